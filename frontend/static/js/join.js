// The student's page (/watch): one box for the class code; a known code opens /watch/<code>.

import { api } from './api.js';

const $ = (id) => document.getElementById(id);

$('join-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const code = $('join-code').value.trim().toUpperCase();
  $('join-error').textContent = '';
  if (!code) {
    $('join-error').textContent = 'Type the code shown on the projector.';
    return;
  }
  try {
    await api.broadcast(code);
    window.location.assign(`/watch/${encodeURIComponent(code)}`);
  } catch (exc) {
    $('join-error').textContent = exc.status === 404
      ? `No class is watching “${code}” right now: check the code on the projector.`
      : exc.message;
  }
});
