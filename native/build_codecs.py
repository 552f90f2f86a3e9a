"""cffi (API mode) build of the C codecs in native/: module xmfax._native."""
from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef("int xmfax_native_abi(void);")
ffibuilder.set_source("xmfax._native", "int xmfax_native_abi(void) { return 0; }")

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
