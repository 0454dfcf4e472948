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
// (anert/mil/emu). It has no compile limit. Its surfaces are Go slices, so it measures exactly
// what a real device would move: Traffic counts the bytes its Inputs and Programs move.
type Emu struct{ Counter }

// NewEmu returns the emulator device.
func NewEmu() *Emu { return &Emu{} }

func (*Emu) Name() string        { return "emu" }
func (*Emu) CompileCount() int   { return int(emuCompiles.Load()) }
func (*Emu) PeakTFLOPS() float64 { return 0 }
func (*Emu) Close() error        { return nil }

// Compile parses and checks the kernel's MIL text and blobs.
func (e *Emu) Compile(k *mil.Kernel) (Program, error) {
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
	return &emuProgram{e: e, k: k, p: p, out: make([]uint16, k.Out.Elems())}, nil
}

type emuProgram struct {
	e      *Emu
	mu     sync.Mutex // serialises Eval, Read and CopyTo: one output surface, as on the ANE
	k      *mil.Kernel
	p      *emu.Program
	out    []uint16 // the output surface
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

func (p *emuProgram) Eval(in Input) error {
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
	return p.p.Run(ei.buf, p.out)
}

func (p *emuProgram) Read(f mil.Field, dst []uint16) error {
	if p.closed.Load() {
		return fmt.Errorf("kernel %s: program is closed", p.k.Name)
	}
	if err := CheckField(f, p.k.Out, len(dst)); err != nil {
		return fmt.Errorf("kernel %s: reading the output: %w", p.k.Name, err)
	}
	p.mu.Lock()
	f.UnpackFP16(dst, p.out)
	p.mu.Unlock()
	p.e.CountOut(f.Len())
	return nil
}

func (p *emuProgram) CopyTo(from mil.Field, to Input, f mil.Field) error {
	if p.closed.Load() {
		return fmt.Errorf("kernel %s: program is closed", p.k.Name)
	}
	ei, ok := to.(*emuInput)
	if !ok {
		return fmt.Errorf("kernel %s: copying %s to %T: the destination is not an emulator input", p.k.Name, from.Name, to)
	}
	if err := CheckField(from, p.k.Out, -1); err != nil {
		return fmt.Errorf("kernel %s: copying from the output: %w", p.k.Name, err)
	}
	if err := CheckField(f, ei.p.k.In, from.Len()); err != nil {
		return fmt.Errorf("kernel %s → %s: %w", p.k.Name, ei.p.k.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ei.mu.Lock()
	defer ei.mu.Unlock()
	if _, err := CopyBlock(ei.buf, f.Width, f, p.out, from.Width, from); err != nil {
		return fmt.Errorf("kernel %s → %s: %w", p.k.Name, ei.p.k.Name, err)
	}
	p.e.CountCopy(from.Len())
	return nil
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
	in.p.e.CountIn(f.Len())
	return nil
}

func (in *emuInput) WriteFP16(f mil.Field, block []uint16) error {
	if err := CheckField(f, in.p.k.In, len(block)); err != nil {
		return fmt.Errorf("kernel %s: %w", in.p.k.Name, err)
	}
	in.mu.Lock()
	f.PackFP16(in.buf, block)
	in.mu.Unlock()
	in.p.e.CountIn(f.Len())
	return nil
}

func (in *emuInput) Close() error { return nil }
