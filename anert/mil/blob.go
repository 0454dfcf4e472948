package mil

import (
	"encoding/binary"
	"fmt"

	"github.com/anelab/anelab/anert/mil/fp16"
)

// BLOBFILE layout (seed-system §3.2, maderix training/training_dynamic/io.h build_blob_fp16):
//
//	byte 0 = 1, byte 4 = 2                       64-byte file header
//	bytes 64..67 = EF BE AD DE (0xDEADBEEF LE)   chunk header, pointed at by MIL offset=uint64(64)
//	byte 68 = 1
//	uint32 at 72 = data size in bytes
//	uint32 at 80 = data offset (128)
//	bytes 128.. = raw little-endian fp16
const (
	BlobHeaderSize  = 128 // bytes before the fp16 data
	BlobChunkOffset = 64  // the offset the MIL BLOBFILE reference names
	blobMagic       = 0xDEADBEEF
)

// BuildBlob returns a BLOBFILE holding data rounded to fp16.
func BuildBlob(data []float32) []byte {
	b := make([]byte, BlobHeaderSize+2*len(data))
	b[0], b[4] = 1, 2
	binary.LittleEndian.PutUint32(b[64:], blobMagic)
	b[68] = 1
	binary.LittleEndian.PutUint32(b[72:], uint32(2*len(data)))
	binary.LittleEndian.PutUint32(b[80:], BlobHeaderSize)
	for i, v := range data {
		binary.LittleEndian.PutUint16(b[BlobHeaderSize+2*i:], fp16.FromFloat32(v))
	}
	return b
}

// ParseBlob validates a BLOBFILE whose chunk header is at offset (the MIL offset=uint64(…)) and
// returns its fp16 payload. want is the element count the MIL declares (-1: any).
func ParseBlob(b []byte, offset uint64, want int) ([]uint16, error) {
	if len(b) < BlobHeaderSize {
		return nil, fmt.Errorf("blob is %d bytes, shorter than the %d-byte header", len(b), BlobHeaderSize)
	}
	if b[0] != 1 || b[4] != 2 {
		return nil, fmt.Errorf("bad file header: byte 0 = %d (want 1), byte 4 = %d (want 2)", b[0], b[4])
	}
	if offset+24 > uint64(len(b)) {
		return nil, fmt.Errorf("chunk offset %d is past the blob's %d bytes", offset, len(b))
	}
	c := b[offset:]
	if m := binary.LittleEndian.Uint32(c); m != blobMagic {
		return nil, fmt.Errorf("no 0xDEADBEEF chunk marker at offset %d (found %#08x); the MIL offset must be %d", offset, m, BlobChunkOffset)
	}
	if c[4] != 1 {
		return nil, fmt.Errorf("chunk header byte 4 = %d, want 1", c[4])
	}
	size := uint64(binary.LittleEndian.Uint32(c[8:]))
	data := uint64(binary.LittleEndian.Uint32(c[16:]))
	if data+size > uint64(len(b)) {
		return nil, fmt.Errorf("chunk says %d data bytes at offset %d, but the blob has %d bytes", size, data, len(b))
	}
	if size%2 != 0 {
		return nil, fmt.Errorf("chunk data size %d is odd; fp16 data has 2 bytes per element", size)
	}
	if want >= 0 && size != uint64(2*want) {
		return nil, fmt.Errorf("chunk holds %d fp16 values, the MIL declares %d", size/2, want)
	}
	out := make([]uint16, size/2)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(b[data+uint64(2*i):])
	}
	return out, nil
}
