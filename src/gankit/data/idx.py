"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST (gzip-compressed or raw).

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the row-major payload in big-endian order. Every way a file can be damaged
(short header, unknown dtype, missing or extra payload bytes, broken gzip stream) becomes a
:class:`~gankit.errors.GankitError` that names the file and says what to do.
"""

import gzip
import io
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from gankit.errors import GankitError

# IDX type codes and their big-endian numpy dtypes (from the format's original description).
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_HINT = "replace it with a complete copy"
_CHUNK = 1 << 20  # bytes per read: gzip decompresses each into a temporary this big
_MAX_DIMS = 64  # NumPy's limit on array dimensions
_DEFLATE_RATIO = 1032  # deflate expands a byte into at most this many


def _open(path: Path) -> BinaryIO:
    """Open ``path`` for reading, decompressing on the fly when it starts with the gzip magic."""
    # Sniff the content rather than trust the suffix: users rename files, and some mirrors serve
    # already-decompressed files under the .gz name.
    with path.open("rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def _header(stream: BinaryIO, path: Path, hint: str) -> tuple[np.dtype, tuple[int, ...]]:
    """Parse the magic number and the dimensions; returns (dtype, shape)."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise GankitError(
            f"{path}: truncated, expected a 4-byte IDX magic number, found {len(magic)}; {hint}"
        )
    if magic[:2] != b"\x00\x00":
        raise GankitError(f"{path}: not an IDX file (starts with 0x{magic.hex()}); {hint}")
    code, ndim = magic[2], magic[3]
    if code not in DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise GankitError(
            f"{path}: unknown IDX data type code 0x{code:02X} (known: {known}); {hint}"
        )
    if not 1 <= ndim <= _MAX_DIMS:
        raise GankitError(
            f"{path}: IDX header declares {ndim} dimensions (gankit reads 1-{_MAX_DIMS}); {hint}"
        )
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise GankitError(
            f"{path}: truncated, expected {4 * ndim} bytes of dimensions, found {len(raw_dims)}; "
            f"{hint}"
        )
    return DTYPES[code], struct.unpack(f">{ndim}I", raw_dims)


def _room(path: Path, stream: BinaryIO) -> tuple[int, str]:
    """The most payload bytes left in ``stream``, known without reading it, and "" when that is
    exact (raw file) or "at most " (gzip: deflate's largest expansion of the file's size)."""
    if isinstance(stream, gzip.GzipFile):
        return path.stat().st_size * _DEFLATE_RATIO, "at most "
    return path.stat().st_size - stream.tell(), ""


def _payload(
    stream: BinaryIO, path: Path, dtype: np.dtype, shape: tuple[int, ...], hint: str
) -> np.ndarray:
    """Read exactly the payload the header announces into a writable native-order array."""
    kind = "image data" if len(shape) >= 3 else "data"
    expected, found = math.prod(shape) * dtype.itemsize, 0  # Python ints: no overflow
    room, bound = _room(path, stream)
    if expected > room:  # before allocating: a damaged header can claim terabytes
        raise GankitError(
            f"{path}: truncated, expected {expected} bytes of {kind}, found {bound}{room}; {hint}"
        )
    buffer = np.empty(expected, np.uint8)
    try:
        array = buffer.view(dtype).reshape(shape)
    except ValueError:  # a zero dimension beside others whose product NumPy cannot index
        raise GankitError(
            f"{path}: IDX header declares an impossible shape {shape}; {hint}"
        ) from None
    view = memoryview(buffer)
    # Filled in place piece by piece: one big read() held the payload twice (the bytes, then the
    # array copied out of them), +47 MB peak for MNIST's training images; it is faster too.
    while found < expected:
        got = stream.readinto(view[found : found + _CHUNK])
        if not got:
            break
        found += got
    if found < expected:
        raise GankitError(
            f"{path}: truncated, expected {expected} bytes of {kind}, found {found}; {hint}"
        )
    if stream.read(1):
        raise GankitError(
            f"{path}: longer than its header says, expected only {expected} bytes of {kind}; {hint}"
        )
    if not dtype.isnative:  # wider types are big-endian on disk: swap in place, no copy
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def read_idx(path: str | Path, hint: str = DEFAULT_HINT) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw.

    Args:
        path: the file; compression is detected from its first bytes, not its name.
        hint: what the user should do if the file is damaged, appended to error messages.

    Returns:
        A writable array of the header's shape in native byte order; uint8 for MNIST
        (e.g. (60000, 28, 28) images in [0, 255], or (60000,) labels).

    Raises:
        GankitError: the file is missing, truncated, has extra bytes or a bad header.
    """
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"{path}: no such file; {hint}")
    try:
        with _open(path) as stream:
            dtype, shape = _header(stream, path, hint)
            return _payload(stream, path, dtype, shape, hint)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        # A gzip stream cut short or with a failing CRC: the payload cannot be trusted.
        raise GankitError(f"{path}: corrupt or truncated gzip data ({err}); {hint}") from None


def read_idx_tensor(path: str | Path, hint: str = DEFAULT_HINT) -> torch.Tensor:
    """:func:`read_idx` as a torch tensor (uint8 for MNIST files), sharing the array's memory."""
    return torch.from_numpy(read_idx(path, hint))


def idx_parts(array: np.ndarray | torch.Tensor) -> tuple[bytes, np.ndarray]:
    """The IDX header of ``array`` and its payload as a contiguous on-disk-order array."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    native = array.dtype.newbyteorder("=")
    if native not in _CODES or not 1 <= array.ndim <= 255:
        raise GankitError(
            f"cannot write IDX: dtype {array.dtype} with {array.ndim} dims is not supported; "
            "use uint8, int8, int16, int32, float32 or float64 with 1-255 dims"
        )
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header, np.ascontiguousarray(array, dtype=DTYPES[code])


def idx_bytes(array: np.ndarray | torch.Tensor) -> bytes:
    """Encode ``array`` (any shape, ndim 1-255, an IDX dtype) as the bytes of an IDX file."""
    header, payload = idx_parts(array)
    return header + payload.tobytes()


def write_idx(path: str | Path, array: np.ndarray | torch.Tensor) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    Args:
        path: destination; parent folders are created.
        array: e.g. uint8 (N, H, W) images or uint8 (N,) labels.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        # mtime=0 makes the compressed bytes reproducible, so checksums of written files are stable.
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
            gz.write(data)
        data = buffer.getvalue()
    path.write_bytes(data)
    return path
