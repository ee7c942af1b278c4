"""What the watcher of `python -m toysuper.launch` passes on of its training child's stderr
(launch._Passer): everything as it comes, but the FATAL log line and stack trace of JAX's C++
runtime when a host dies, so that the watcher's own one-line message is the last line, on a
line of its own (issue 30). The whole launch is tested in test_hosts.py."""

import io
import sys

import pytest

from toysuper import launch

BAR = "\rtraining 6 models:  50%|#####     | 60.0k/120k [00:10<00:10, 6.00k model-steps/s]"
FATAL = ("F1203 17:41:26.037105   27434 client.h:80] Terminating process because the JAX "
         "distributed service detected fatal errors. This most likely indicates that another "
         "task died\nRPC: /xla.coordination.CoordinationService/PollForError\n"
         "*** Check failure stack trace: ***\n"
         "    @     0x7fea5c240634  absl::log_internal::LogMessage::SendToLog()\n")


class _Stderr:
    def __init__(self):
        self.buffer = io.BytesIO()


def _pass(text: str, chunk: int, hold: bool, show_held: bool, monkeypatch) -> str:
    err = _Stderr()
    monkeypatch.setattr(sys, "stderr", err)
    out, data = launch._Passer(hold=hold), text.encode()
    for i in range(0, len(data), chunk):  # the pipe cuts the stream anywhere
        out.pass_on(data[i:i + chunk])
    out.end(show_held=show_held)
    out.line_end()
    return err.buffer.getvalue().decode()


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 16])
def test_a_death_shows_the_bar_then_nothing_of_the_abort(chunk, monkeypatch):
    got = _pass("[setup]\n" + BAR + FATAL, chunk, hold=True, show_held=False,
                monkeypatch=monkeypatch)
    assert got == "[setup]\n" + BAR + "\n"  # the bar's line ended: the message starts anew
    assert launch.LOST_TEXT.decode() in FATAL  # what the watcher explains the death by


@pytest.mark.parametrize("chunk", [3, 1 << 16])
def test_everything_is_shown_when_the_death_is_not_explained_or_logs_are_asked_for(chunk,
                                                                                  monkeypatch):
    text = BAR + FATAL
    assert _pass(text, chunk, hold=True, show_held=True, monkeypatch=monkeypatch) == text
    assert _pass(text, chunk, hold=False, show_held=False, monkeypatch=monkeypatch) == text


def test_a_run_that_ends_normally_passes_its_stderr_unchanged(monkeypatch):
    text = "F is a letter, F1 a key; 12:30 F 10\n" + BAR + "\n"
    assert _pass(text, 5, hold=True, show_held=True, monkeypatch=monkeypatch) == text
