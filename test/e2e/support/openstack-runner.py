#!/usr/bin/python3
"""Runs /usr/bin/openstack commands for the end-to-end tests without paying Python's start per command.

/usr/bin/openstack is `sys.exit(openstackclient.shell.main())`. This process imports what that needs once
(the shell and the command modules the tests use), then forks one child per command: the child takes the
command's environment, working directory and output files, runs the same `openstackclient.shell.main(argv)`
and exits with its status, so every command still starts from a clean interpreter state (no client, session,
token, logging handler or cache shared between commands), only the imports are shared. About 1.8 s per
command becomes about 0.1 s.

Protocol, one JSON object per line: requests on stdin `{"id", "args", "env", "cwd", "stdout", "stderr",
"timeout"}` (stdout/stderr are files the child writes, timeout in seconds); answers on stdout `{"id", "code"}`
once the child has ended (code -N when signal N ended it, -9 when its timeout did). It exits when stdin ends
and its children have, removing the directory given as its argument (where the callers keep those files).
"""
import json
import os
import select
import shutil
import signal
import sys
import time
import traceback

from importlib.metadata import entry_points

# cliff names the program (in usage and error messages) after sys.argv[0] when it is imported.
sys.argv[0] = '/usr/bin/openstack'
from openstackclient import shell  # noqa: E402

# The command modules of the services the tests drive, imported here so that no child imports them again.
for group in ('openstack.cli', 'openstack.common', 'openstack.compute.v2', 'openstack.identity.v3',
              'openstack.image.v2', 'openstack.network.v2', 'openstack.orchestration.v1'):
    for ep in entry_points(group=group):
        try:
            ep.load()
        except Exception:  # a plugin that cannot load here fails in the child too, with the client's own words
            pass


def run(request):
    """In the child: the command as /usr/bin/openstack would run it; never returns."""
    code = 1
    try:
        os.environ.clear()
        os.environ.update(request['env'])
        os.chdir(request.get('cwd') or '/')
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd, path in ((1, request['stdout']), (2, request['stderr'])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        sys.argv = ['/usr/bin/openstack'] + request['args']
        code = shell.main(request['args'])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def answer(message):
    sys.stdout.write(json.dumps(message) + '\n')
    sys.stdout.flush()


def main():
    children = {}  # pid -> (id, deadline)
    stdin = sys.stdin.buffer
    pending = b''
    open_ = True
    # A child's end wakes the loop: SIGCHLD writes to this pipe.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    while open_ or children:
        readable, _, _ = select.select([stdin, wake_read] if open_ else [wake_read], [], [], 0.5)
        if wake_read in readable:
            try:
                os.read(wake_read, 4096)
            except BlockingIOError:
                pass
        if stdin in readable:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                open_ = False
            pending += chunk
            while b'\n' in pending:
                line, pending = pending.split(b'\n', 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    os.close(wake_read)
                    os.close(wake_write)
                    run(request)
                children[pid] = (request['id'], time.monotonic() + float(request.get('timeout', 60)))
        now = time.monotonic()
        for pid, (_, deadline) in list(children.items()):
            if now > deadline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            id_, _ = children.pop(pid, (None, 0))
            if id_ is not None:
                code = os.waitstatus_to_exitcode(status)
                answer({'id': id_, 'code': code})


if __name__ == '__main__':
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        main()
    finally:
        if len(sys.argv) > 1:
            shutil.rmtree(sys.argv[1], ignore_errors=True)
