"""Programs for one stdio problem (read two integers, print their sum), from correct to
hostile, as a model could write them: tests/test_sandbox_hostile.py runs them through the
code verifier and checks each verdict and what reached the host.

Placeholders filled in by the test: {secret_pid} (a process whose environment holds the
secret), {outside} (a host folder), {sock} (a host Unix socket path), {marker} (an argument
that names processes the program starts).
"""

PROBLEM = {
    "shape": "stdio",
    "tests": [
        {"input": "2 3\n", "output": "5\n"},
        {"input": "-7 10\n", "output": "3\n"},
        {"input": "1000000 1000000\n", "output": "2000000\n"},
    ],
}

SOLVE = "a, b = map(int, input().split())\nprint(a + b)\n"

# A call of _posixsubprocess.fork_exec as subprocess makes it (no audit event is raised),
# with as many arguments as this Python's subprocess passes (22 or 23).
FORK_EXEC = """
import _posixsubprocess, os
def spawn(argv, new_session):
    r, w = os.pipe()
    args = [[a.encode() for a in argv], [argv[0].encode()], True, (), None, None,
            -1, -1, -1, -1, -1, -1, r, w, True, new_session, -1, None, None, None, -1, None]
    try:
        return _posixsubprocess.fork_exec(*args, False)
    except TypeError:
        return _posixsubprocess.fork_exec(*args)
"""

# io_uring through cffi (C calls raise no audit event): a Unix socket made and connected
# by the kernel's ring, never by socket()/connect().
IO_URING = """
import cffi, os, struct
ffi = cffi.FFI()
ffi.cdef("long syscall(long number, ...);\\n"
         "void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);")
C = ffi.dlopen(None)
params = ffi.new("unsigned char[120]")
fd = C.syscall(425, ffi.cast("unsigned int", 4), params)
if fd < 0:
    raise OSError(ffi.errno, "io_uring_setup: " + os.strerror(ffi.errno))
p = bytes(ffi.buffer(params))
sq_entries, cq_entries = struct.unpack_from("II", p, 0)
sq_off = struct.unpack_from("IIIIIIIIQ", p, 40)
cq_off = struct.unpack_from("IIIIIIIIQ", p, 80)
PROT, FLAGS = 0x3, 0x8001
sq = ffi.cast("unsigned char *", C.mmap(ffi.NULL, sq_off[6] + sq_entries * 4, PROT, FLAGS, fd, 0))
cq = ffi.cast("unsigned char *", C.mmap(ffi.NULL, cq_off[5] + cq_entries * 16, PROT, FLAGS, fd,
              0x8000000))
sqes = ffi.cast("unsigned char *", C.mmap(ffi.NULL, sq_entries * 64, PROT, FLAGS, fd, 0x10000000))
u32 = lambda base, off: ffi.cast("unsigned int *", base + off)
def submit(opcode, fdv, off, addr):
    tail = u32(sq, sq_off[1])[0]
    idx = tail & u32(sq, sq_off[2])[0]
    entry = sqes + idx * 64
    ffi.memmove(entry, bytes(64), 64)
    struct.pack_into("BBHiQQII", ffi.buffer(entry, 64), 0, opcode, 0, 0, fdv, off, addr, 0, 0)
    u32(sq, sq_off[6])[idx] = idx
    u32(sq, sq_off[1])[0] = tail + 1
    one = ffi.cast("unsigned int", 1)
    if C.syscall(426, ffi.cast("int", fd), one, one, one, ffi.NULL, ffi.cast("size_t", 0)) < 0:
        raise OSError(ffi.errno, "io_uring_enter")
    head = u32(cq, cq_off[0])[0]
    res = ffi.cast("int *", cq + cq_off[5] + (head & u32(cq, cq_off[2])[0]) * 16 + 8)[0]
    u32(cq, cq_off[0])[0] = head + 1
    if res < 0:
        raise OSError(-res, os.strerror(-res))
    return res
path = {sock!r}
sock = submit(45, 1, 1, 0)  # IORING_OP_SOCKET: AF_UNIX, SOCK_STREAM
addr = ffi.new("char[110]", struct.pack("H", 1) + path.encode())
submit(16, sock, 2 + len(path) + 1, int(ffi.cast("uintptr_t", addr)))  # IORING_OP_CONNECT
os.write(sock, b"leak-io_uring")
"""

# The C library through cffi: what a program that knows about the audit hook uses (C calls
# raise no audit event), so what stops it below is the kernel.
LIBC = """
import cffi, os
ffi = cffi.FFI()
ffi.cdef("int open(const char *path, int flags, int mode); long read(int fd, void *buf, "
         "unsigned long n); long write(int fd, const void *buf, unsigned long n); "
         "int socket(int domain, int type, int protocol);")
C = ffi.dlopen(None)
def check(result, what):
    if result < 0:
        raise OSError(ffi.errno, what + ": " + os.strerror(ffi.errno))
    return result
"""

PROGRAMS = {
    "correct": (SOLVE, "passed"),
    "wrong": ("a, b = map(int, input().split())\nprint(a - b)\n", "failed_tests"),
    "crashing": ("a, b = map(int, input().split())\nprint([a][b])\n", "runtime_error"),
    "looping": ("while True:\n    pass\n", "timeout"),
    "looping_past_its_timer": (
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n",
        "timeout",
    ),
    "memory_hungry": (
        "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n",
        "memory",
    ),
    "fork_bombing": ("import os\nwhile True:\n    os.fork()\n", "runtime_error"),
    "fork_bombing_without_audit": (
        FORK_EXEC + "while True:\n    spawn(['/usr/bin/sleep', '{marker}'], False)\n",
        "runtime_error",
    ),
    "setsid_orphaning": (
        FORK_EXEC + "spawn(['/usr/bin/sleep', '{marker}'], True)\n" + SOLVE,
        "runtime_error",  # no process may be started at all by default
    ),
    "disk_filling": (
        "i = 0\nwhile True:\n"
        "    open(f'fill{{i}}.bin', 'wb').write(b'x' * 8 * 2**20)\n    i += 1\n",
        "runtime_error",
    ),
    "reads_the_parent_environment": (
        LIBC + "check(C.open(b'/proc/{secret_pid}/environ', 0, 0), 'open environ')\n",
        "runtime_error",
    ),
    "reads_every_environment": (
        LIBC + "buf = ffi.new('char[65536]')\nfor pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        fd = C.open(f'/proc/{{pid}}/environ'.encode(), 0, 0)\n"
        "        if fd >= 0:\n"
        "            print(ffi.buffer(buf, C.read(fd, buf, 65536))[:].decode(errors='replace'))\n"
        + SOLVE,
        "runtime_error",  # the audit hook refuses listing /proc
    ),
    "writes_outside_its_folder": (
        LIBC + "check(C.open(({outside!r} + '/escaped.txt').encode(), 0o101, 0o644), 'open')\n",
        "runtime_error",
    ),
    "writes_to_tmp": ("open('/tmp/rf-escaped.txt', 'w').write('escaped')\n", "runtime_error"),
    "connects_to_a_host_unix_socket": (
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({sock!r})\n"
        "s.sendall(b'leak-socket')\n",
        "runtime_error",
    ),
    "connects_to_a_host_unix_socket_through_cffi": (
        LIBC + "check(C.socket(1, 1, 0), 'socket')\n",
        "runtime_error",
    ),
    "connects_by_io_uring_through_cffi": (IO_URING, "runtime_error"),
    "changes_a_read_only_file_through_its_fd": (
        "import os, sys\nfd = os.open(sys.executable, os.O_RDONLY)\nos.fchmod(fd, 0o777)\n",
        "runtime_error",
    ),
    "touches_a_read_only_file_through_its_fd": (
        "import os, sys\nfd = os.open(sys.executable, os.O_RDONLY)\nos.utime(fd, (0, 0))\n",
        "runtime_error",
    ),
    "tags_a_read_only_file_through_its_fd": (
        "import os, sys\nfd = os.open(sys.executable, os.O_RDONLY)\n"
        "os.setxattr(fd, 'user.rf', b'x')\n",
        "runtime_error",
    ),
    "forks_through_posixsubprocess": (
        FORK_EXEC + "spawn(['/usr/bin/sleep', '{marker}'], False)\n" + SOLVE,
        "runtime_error",
    ),
    "correct_after_all_that": (SOLVE, "passed"),
}
