import pytest

from server.settings import CORES, Settings, SettingsError


def test_environment_then_overrides(tmp_path):
    env = {"LI2_PORT": "9001", "LI2_QUOTA": "3", "LI2_ALLOWED_ORIGINS": "https://a.example, "
           "http://b.example:8080/", "LI2_DATA_DIR": str(tmp_path), "LI2_INSTRUCTOR_TOKEN": ""}
    s = Settings.load(env, quota=5, host=None)
    assert (s.port, s.quota, s.host) == (9001, 5, "127.0.0.1")
    assert s.allowed_origins == ("https://a.example", "http://b.example:8080")
    assert s.instructor_token is None  # empty (compose default) means no token
    assert s.max_jobs is None  # the runner's CPUs (a test in test_health checks the number)
    assert (s.runner, s.store, s.database_path) == ("local", "sqlite", tmp_path / "runs.sqlite")


def test_database_url_chooses_the_store(tmp_path):
    s = Settings.load({"LI2_DATABASE_URL": "postgresql://li2@db:5432/li2"})
    assert (s.store, s.database_url) == ("postgresql", "postgresql://li2@db:5432/li2")
    s = Settings.load({}, database_url=f"sqlite:///{tmp_path}/x.sqlite")
    assert (s.store, s.database_path) == ("sqlite", tmp_path / "x.sqlite")
    s = Settings.load({"LI2_RUNNER": "ray", "LI2_RAY_ADDRESS": "auto",
                       "LI2_MAX_JOBS": str(CORES + 1)})  # the cluster's CPUs bound it
    assert (s.runner, s.ray_address, s.max_jobs) == ("ray", "auto", CORES + 1)


@pytest.mark.parametrize("env, field", [
    ({"LI2_MAX_JOBS": str(CORES + 1)}, "max_jobs"),
    ({"LI2_MAX_JOBS": "0"}, "max_jobs"),
    ({"LI2_QUOTA": "0"}, "quota"),
    ({"LI2_INSTRUCTOR_TOKEN": "short"}, "instructor_token"),
    ({"LI2_ALLOWED_ORIGINS": "*"}, "allowed_origins"),
    ({"LI2_ALLOWED_ORIGINS": "https://*.example.com"}, "allowed_origins"),
    ({"LI2_ALLOWED_ORIGINS": "file:///etc"}, "allowed_origins"),
    ({"LI2_WALL_TIME_LIMIT": "-1"}, "wall_time_limit"),
    ({"LI2_PORT": "70000"}, "port"),
    ({"LI2_START_METHOD": "fork"}, "start_method"),
    ({"LI2_RUNNER": "slurm"}, "runner"),
    ({"LI2_RAY_ADDRESS": "auto"}, "ray_address"),  # without runner ray
    ({"LI2_DATABASE_URL": "mysql://x@y/z"}, "database_url"),
    ({"LI2_DATABASE_URL": "sqlite://relative"}, "database_url"),
    ({"LI2_SWEEP_QUOTA": "0"}, "sweep_quota"),
    ({"LI2_NOT_A_SETTING": "1"}, None),  # unknown variables are ignored, not errors
])
def test_unsafe_values_are_refused_naming_the_variable(env, field):
    if field is None:
        Settings.load(env)
        return
    with pytest.raises(SettingsError, match=f"LI2_{field.upper()}"):
        Settings.load(env)


def test_data_dir_must_not_be_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SettingsError, match="data_dir"):
        Settings.load({}, data_dir=str(f))


def test_public_url_must_be_an_address():
    from server.settings import Settings, SettingsError

    assert Settings.load({}, public_url="http://10.0.0.5:8000/").public_url == \
        "http://10.0.0.5:8000"
    for bad in ("10.0.0.5:8000", "ftp://x", "http://x/?a=1"):
        try:
            Settings.load({}, public_url=bad)
        except SettingsError as exc:
            assert "public_url" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")
