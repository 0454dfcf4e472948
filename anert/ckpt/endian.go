package ckpt

import (
	"encoding/binary"
	"io"
	"math"
	"unsafe"
)

// littleEndian is true on every machine anelab targets (amd64, arm64): float32 slices then are
// their own file encoding, and no copy is made.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// leBytes returns d's little-endian bytes: a view of d's memory on a little-endian machine, else
// an encoding in buf (grown as needed). The result must not outlive the next use of buf or d.
func leBytes(d []float32, buf []byte) []byte {
	if len(d) == 0 {
		return buf[:0]
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 4*len(d))
	}
	buf = buf[:0]
	for _, x := range d {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
	}
	return buf
}

// readLE reads len(d) little-endian float32s from r into d and returns the bytes as read (a view
// of d, or buf).
func readLE(r io.Reader, d []float32, buf []byte) ([]byte, error) {
	if len(d) == 0 {
		return buf[:0], nil
	}
	if littleEndian {
		b := unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 4*len(d))
		_, err := io.ReadFull(r, b)
		return b, err
	}
	if cap(buf) < 4*len(d) {
		buf = make([]byte, 4*len(d))
	}
	buf = buf[:4*len(d)]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, err
	}
	for i := range d {
		d[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
	}
	return buf, nil
}
