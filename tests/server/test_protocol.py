import json
import struct

import numpy as np
import pytest

from server.protocol import decode_snapshot, encode_snapshot, to_json


def test_snapshot_frame_round_trips_with_aligned_arrays():
    arrays = {"W": np.arange(6, dtype=np.float32).reshape(2, 3),
              "odd": np.arange(5, dtype=np.float32),  # 20 bytes: the next array needs padding
              "V": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
              "flag": np.array([True, False])}
    frame = encode_snapshot("abc", seq=7, step=40, arrays=arrays)
    magic, version, flags, header_len = struct.unpack_from("<4sHHI", frame)
    assert (magic, version, flags) == (b"LI2S", 1, 0)
    start = 12 + header_len
    assert start % 8 == 0
    header = json.loads(frame[12:start])
    assert (header["run_id"], header["seq"], header["step"]) == ("abc", 7, 40)
    for spec in header["arrays"]:
        assert (start + spec["offset"]) % 8 == 0
    decoded_header, decoded = decode_snapshot(frame)
    assert decoded_header == header
    for name, a in arrays.items():
        np.testing.assert_array_equal(decoded[name], a.astype(np.float32))
        assert decoded[name].dtype == np.float32


def test_decode_refuses_foreign_bytes():
    with pytest.raises(ValueError, match="snapshot frame"):
        decode_snapshot(b"PK\x03\x04" + b"\0" * 20)


def test_json_is_strict_for_browsers():
    text = to_json({"a": float("nan"), "b": [1.5, float("inf")], "c": np.float32(2.5),
                    "d": np.arange(2)})
    assert json.loads(text) == {"a": None, "b": [1.5, None], "c": 2.5, "d": [0, 1]}
    assert "NaN" not in text and "Infinity" not in text
