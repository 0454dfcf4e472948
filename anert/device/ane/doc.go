// Package ane is the Apple Neural Engine device: it compiles anert/mil kernels through
// github.com/tmc/apple/x/ane (purego, no cgo) and moves fp16 data through IOSurfaces. It exists
// on darwin/arm64 only, where importing it registers "ane" with anert/device:
//
//	import _ "github.com/anelab/anelab/anert/device/ane"
//
// Each kernel is compiled once (ANECompilerService breaks after ~100-119 compiles per process,
// ane-facts §B3, so Compile refuses past MaxCompiles). A compile failure dumps the MIL and its
// blobs to a temporary directory named in the error. Every Program owns one output surface; its
// first Input is the compiled model's own input surface, further Inputs (one per layer) are extra
// IOSurfaces of the same layout evaluated through their own mapped request. Eval leaves its result
// in the output surface: Read copies one field (or its first columns) out, CopyTo moves a field
// into another program's input surface under both surfaces' locks (one memmove when the rows line
// up), and the Device counts the bytes of each (device.Traffic).
package ane

// MaxCompiles is the per-process compile budget: fiale observed ~100 compiles before
// ANECompilerService fails silently, maderix ~119 (ane-facts §B3).
const MaxCompiles = 100

// FallbackTFLOPS is the fp16 peak the original assumed for its utilisation metric (seed-system
// §0), used only when the chip is not recognised (anert/chip has the per-chip figures).
const FallbackTFLOPS = 15.8
