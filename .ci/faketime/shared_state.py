"""Create libfaketime's shared semaphore and counter once, open to every user (see .ci/run).

Without them every preloaded process that finds no FAKETIME_SHARED creates its own pair,
named by its PID and readable by its user only, and passes it to its children: the embedded
PostgreSQL's processes (another user) cannot open root's, create their own, and a process
killed before its exit handler leaves its pair behind, so a later process given the same PID
(pid_max is 32768 here) cannot create one and libfaketime exits ("sem_open failed and
recreation attempts failed"). One pair open to all, named after PID 1 (which never exits, so
no process's exit handler unlinks it), is opened by every process and never recreated.
"""
import ctypes
import os

SEM, SHM = "/faketime_sem_1", "/faketime_shm_1"
os.umask(0)
libc = ctypes.CDLL(None, use_errno=True)
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
handle = libc.sem_open(SEM.encode(), os.O_CREAT, 0o666, 1)
if handle in (None, ctypes.c_void_p(-1).value):
    raise OSError(ctypes.get_errno(), f"sem_open {SEM}")
libc.sem_close(ctypes.c_void_p(handle))
# POSIX shared memory lives in /dev/shm by definition; every user must open both objects.
shm_path, sem_path = "/dev/shm" + SHM, "/dev/shm/sem." + SEM[1:]  # noqa: S108
with open(shm_path, "wb") as shm:
    shm.write(bytes(8))  # libfaketime 0.9.10's shared state: one zeroed 64-bit tick counter
for path in (shm_path, sem_path):
    os.chmod(path, 0o666)  # noqa: S103 - read and written by root and the PostgreSQL user
print(f"{SEM} {SHM}")
