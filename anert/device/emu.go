package device

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/emu"
)

var emuCompiles atomic.Int64

// Emu is the emulator device: it parses and runs the MIL text on the CPU with fp16 semantics
// (anert/mil/emu). It has no compile limit.
type Emu struct{}

// NewEmu returns the emulator device.
func NewEmu() *Emu { return &Emu{} }

func (*Emu) Name() string        { return "emu" }
func (*Emu) CompileCount() int   { return int(emuCompiles.Load()) }
func (*Emu) PeakTFLOPS() float64 { return 0 }
func (*Emu) Close() error        { return nil }

// Compile parses and checks the kernel's MIL text and blobs.
func (*Emu) Compile(k *mil.Kernel) (Program, error) {
	emuCompiles.Add(1)
	p, err := emu.Compile(k.MIL, k.Blobs)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Name, err)
	}
	if got := p.InputShape(); len(got) != 4 || mil.Shape(got) != k.In {
		return nil, fmt.Errorf("kernel %s: MIL input %v, kernel says %v", k.Name, got, k.In)
	}
	if got := p.OutputShape(); len(got) != 4 || mil.Shape(got) != k.Out {
		return nil, fmt.Errorf("kernel %s: MIL output %v, kernel says %v", k.Name, got, k.Out)
	}
	return &emuProgram{k: k, p: p}, nil
}

type emuProgram struct {
	mu     sync.Mutex // serialises Eval, as on the ANE
	k      *mil.Kernel
	p      *emu.Program
	closed atomic.Bool
}

func (p *emuProgram) Kernel() *mil.Kernel    { return p.k }
func (p *emuProgram) InputShape() mil.Shape  { return p.k.In }
func (p *emuProgram) OutputShape() mil.Shape { return p.k.Out }
func (p *emuProgram) Close() error           { p.closed.Store(true); return nil }

func (p *emuProgram) NewInput() (Input, error) {
	if p.closed.Load() {
		return nil, fmt.Errorf("kernel %s: program is closed", p.k.Name)
	}
	return &emuInput{p: p, buf: make([]uint16, p.k.In.Elems())}, nil
}

func (p *emuProgram) Eval(in Input, out []uint16) error {
	if p.closed.Load() {
		return fmt.Errorf("kernel %s: program is closed", p.k.Name)
	}
	ei, ok := in.(*emuInput)
	if !ok || ei.p != p {
		return fmt.Errorf("kernel %s: the input was not made by this program's NewInput", p.k.Name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ei.mu.Lock()
	defer ei.mu.Unlock()
	if len(out) != p.k.Out.Elems() {
		return fmt.Errorf("kernel %s: output buffer has %d values, want %v = %d", p.k.Name, len(out), p.k.Out, p.k.Out.Elems())
	}
	return p.p.Run(ei.buf, out)
}

type emuInput struct {
	p   *emuProgram
	mu  sync.Mutex
	buf []uint16
}

func (in *emuInput) Write(f mil.Field, src []float32) error {
	if err := CheckField(f, in.p.k.In, len(src)); err != nil {
		return fmt.Errorf("kernel %s: %w", in.p.k.Name, err)
	}
	in.mu.Lock()
	f.Pack(in.buf, src)
	in.mu.Unlock()
	return nil
}

func (in *emuInput) WriteFP16(f mil.Field, block []uint16) error {
	if err := CheckField(f, in.p.k.In, len(block)); err != nil {
		return fmt.Errorf("kernel %s: %w", in.p.k.Name, err)
	}
	in.mu.Lock()
	f.PackFP16(in.buf, block)
	in.mu.Unlock()
	return nil
}

func (in *emuInput) Close() error { return nil }
