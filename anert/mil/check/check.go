// Package check is the static ANE constraint checker: it runs the hardware and compiler rules
// gathered in shared/reference/ane-facts.md (§B2) and seed-system.md (§3.9) over generated kernels
// (CheckProgram) and over a model config (CheckConfig), before any device time is spent.
//
// Each rule has an ID, a severity, the symptom it prevents, its source (repository and path or
// issue, as the facts file cites it) and what to change. Errors are rules whose violation fails to
// compile, fails at evaluation, or silently corrupts results; warnings are performance cliffs and
// rules whose source is a different code path (CoreML/Espresso) or a single chip.
package check

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/emu"
)

// Severity of a rule.
type Severity int

const (
	Warning Severity = iota
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Rule is one known constraint.
type Rule struct {
	ID       string
	Severity Severity
	Summary  string // the constraint
	Symptom  string // what happens if it is violated
	Source   string // where it was found
	Fix      string // what to change
}

// Violation is a rule broken by a kernel (Kernel != "") or by the config.
type Violation struct {
	Rule    Rule
	Kernel  string
	Line    int    // first offending MIL line, 0 when not about a line
	Detail  string // the specific finding
	Variant string // RuleVariant: the variant that runs instead of Kernel (mil.Slot.Variant)
}

// Variants lists the variants the violations select ("sdpaWoFwd=split"), one per RuleVariant
// warning; the other fused kernels run as they are.
func Variants(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		if v.Rule.ID == RuleVariant.ID {
			out = append(out, v.Kernel+"="+v.Variant)
		}
	}
	return out
}

func (v Violation) String() string {
	where := "config"
	if v.Kernel != "" {
		where = "kernel " + v.Kernel
		if v.Line > 0 {
			where += fmt.Sprintf(" line %d", v.Line)
		}
	}
	return fmt.Sprintf("%s [%s] %s: %s (%s). Fix: %s. Source: %s",
		v.Rule.Severity, v.Rule.ID, where, v.Detail, v.Rule.Symptom, v.Rule.Fix, v.Rule.Source)
}

// Errors returns the violations of severity Error.
func Errors(vs []Violation) []Violation {
	var out []Violation
	for _, v := range vs {
		if v.Rule.Severity == Error {
			out = append(out, v)
		}
	}
	return out
}

// The rules.
var (
	RuleFormat = Rule{"mil-format", Error,
		"program(1.3), a buildInfo dict, func main<ios18>, every op named [name=string(\"…\")]",
		"compile failure", "Orion docs/ane_api_reference.md; maderix training/stories_mil.h",
		"emit programs with mil.Builder"}
	RuleEmulator = Rule{"emulator", Error,
		"the program parses, every declared type matches the computed shape, every op is one the emulator models",
		"the kernel cannot be verified on the CPU (and a shape error fails the ANE compile)",
		"anelab ARCHITECTURE.md (every kernel is tested through emu)",
		"fix the generator; the message names the line"}
	RuleSingleIO = Rule{"single-io", Error,
		"exactly one input and one output surface; pack all inputs into the spatial dimension",
		"eval error 0x1d / silent wrong data with several surfaces",
		"maderix README \"Single-input constraint\"; Orion #2,#3,#18-#20",
		"pack inputs into the input's spatial dimension and concat outputs on channels"}
	RuleUnsupportedOp = Rule{"unsupported-op", Error,
		"no gelu (use the tanh form), rsqrt (use pow(x,-0.5)), raw reduce_mean, conv bias=, scaled_dot_product_attention (attn_mask is ignored), constexpr_affine_dequantize (bakes weights)",
		"compile failure / InvalidMILProgram, or silently wrong attention",
		"Orion README \"Technical Discoveries\"; rustane README; hollance/neural-engine issue #44; maderix README \"Limitations\"; seed-system §3.9",
		"decompose the op into supported ones"}
	RuleNamedFlags = Rule{"matmul-named-flags", Error,
		"matmul transpose_x/transpose_y are named bool consts, not inline literals",
		"compile failure", "Orion README \"Technical Discoveries\"; rustane README",
		"declare bool consts (bF/bT) and pass them by name"}
	RuleLiveOutput = Rule{"live-output", Error,
		"the function returns a computed node, not a const or an undefined name",
		"InvalidMILProgram", "Orion README \"Technical Discoveries\"; rustane README",
		"return a computed tensor"}
	RuleBlobCount = Rule{"blob-count", Error,
		"at most 16 BLOBFILE tensors per program, and each scalar-operand add/mul/pow takes one of those slots",
		"InvalidMILProgram",
		"Orion issue #3 (@tyrauber) as quoted in docs/ane_constraints.md; fiale-plus README \"16 - n_norms\"",
		"split the kernel or pass constants in the input surface"}
	RuleBlobFormat = Rule{"blob-format", Error,
		"BLOBFILE: 128-byte header (1 at byte 0, 2 at byte 4, 0xDEADBEEF chunk at 64, size at 72, data offset 128 at 80), MIL offset uint64(64)",
		"garbage weights, silently", "Orion #8; maderix training/stories_io.h build_blob",
		"build blobs with mil.BuildBlob"}
	RuleInner32 = Rule{"matmul-inner-32", Error,
		"the inner (contracted) dimension of every matmul is a multiple of 32",
		"silent zeros", "imperatormk ANE_TRAINING.md (M1, macOS 26); seed-system §3.9 (ecosystem notes)",
		"make head dim (dim/heads), dim, ffn and seq multiples of 32"}
	RuleSpatial16 = Rule{"spatial-16", Error,
		"input and output spatial widths are multiples of 16 and at least 16",
		"silent corruption", "rustane README; seed-system §3.9",
		"make seq (and the packed widths: seq, dim, ffn) multiples of 16"}
	RuleInputWidth = Rule{"input-width", Error,
		"input spatial width ≤ 16384",
		"compile failure (M3 Ultra)", "rustane issue #13",
		"shrink seq/ffn or split the kernel's packed weights over two kernels"}
	RuleMinSurface = Rule{"min-surface", Error,
		"every input/output surface is at least ~49 KB",
		"eval error 0x1d", "Orion #4",
		"raise seq or dim (surfaces this small are toy configs: use --device emu)"}
	RuleChannels32K = Rule{"channels-32k", Error,
		"fewer than 32768 channels per tensor (LM heads > 65536 must be chunked)",
		"compile failure", "Orion paper #16; maderix PR #26",
		"lower heads·seq (sdpaBwd1/2 carry 2·heads·seq channels) or split the kernel"}
	RuleSoftmaxPow2 = Rule{"softmax-pow2", Warning,
		"softmax runs along an axis whose length is a power of 2",
		"InvalidMILProgram (seen through CoreML/Espresso; unverified on the in-memory MIL path)",
		"hollance/neural-engine issue #44",
		"use a power-of-2 seq"}
	RuleSRAM = Rule{"sram-32mb", Warning,
		"a kernel's working set (input + output + largest intermediate) fits the ~32 MB ANE SRAM",
		"~30% throughput drop beyond it (SEQ 1024 at dim 768 hits the wall)",
		"Orion paper Table 1; ncdrone/fiale READMEs",
		"lower seq, or split the kernel"}
	RuleM5Align = Rule{"m5-align-128", Warning,
		"surface rows (spatial width × 2 bytes) are 128-byte aligned",
		"needed on M5", "maderix PR #35",
		"make the packed widths multiples of 64 elements"}
	RuleDMA1MiB = Rule{"dma-1mib", Warning,
		"no surface is an exact multiple of 1 MiB",
		"DMA prefetch erratum: 17-19 instead of 45-60 GB/s",
		"kasper0406/stablehlo-coreml PR #110 (citing eiln)",
		"change seq or dim slightly"}
	RuleKernelConfig = Rule{"kernel-config", Error,
		"the model config describes kernels that can be generated (dims positive, heads divide dim, even head dim for RoPE)",
		"no kernels", "anert/mil Config.Validate",
		"fix the model config"}
	RuleGQA = Rule{"gqa", Error,
		"key/value heads equal query heads (MHA)",
		"the MIL compiler crashes with fewer KV heads",
		"fiale-plus README; maderix training/README.md (tiles KV heads on the CPU)",
		"set kv_heads = 0 (= heads)"}
	RuleArch = Rule{"arch-options", Error,
		"the model uses only the architecture the MIL kernels implement: SwiGLU MLP, no QK-norm",
		"no kernels: the fused FFN kernel computes silu(h1)⊙h3 with W1, W3, W2, and the attention kernel goes from the projections straight to RoPE with no per-head norm",
		"anert/mil/kernels.go (ffnFused, sdpaWoFwd); anert/model/arch.go",
		"set model.act = \"swiglu\" and model.qk_norm = false, or train on the CPU backend (untied_head, zero_init and softcap run on the ANE: they live outside the kernels)"}
	RuleDim128 = Rule{"dim-128", Error,
		"model dim is a multiple of 128",
		"silent corruption", "rustane README",
		"use dim 256, 384, 512, 768, …"}
	RuleHidden16 = Rule{"hidden-16", Error,
		"FFN hidden width is a multiple of 16",
		"silent corruption", "rustane README",
		"round ffn to a multiple of 16 (of 32 for matmul-inner-32)"}
	RuleSeqWall = Rule{"seq-1024-wall", Warning,
		"seq < 1024 at dim ≥ 768",
		"SEQ=1024 hits the ANE SRAM wall (step time)",
		"fiale-plus README / seed-system §3.9; Orion paper Table 1",
		"use seq ≤ 512"}
	RuleMaxDim = Rule{"max-dim", Error,
		"every tensor dimension (channels, spatial width, each axis of a reshape) is at most the chip family's limit: 16384 on M1/M2 (A13–A15 ANE generation), 65536 from M3 (A16) on",
		"compile failure (\"exceeds ANE family 3's max dimension 16384\")", chip.MaxDimSource,
		"lower seq (RoPE reshapes q, k to [heads, seq·head_dim/2, 2]; sdpaBwd1/2 carry dim + 2·heads·seq channels) or heads, or check for a newer chip with --chip"}
	RuleVariant = Rule{"variant", Warning,
		"a fused kernel that breaks an error rule on this chip is never compiled: its conservative variant (RoPE on the CPU, anert/mil Slots), which passes, runs instead",
		"none in the results; the variant runs one more kernel per layer (split) or rotates on the CPU (cpu-rope), and moves more bytes per step (aneb.StepTraffic)",
		"anert/aneb variants.go (maderix rotates on the CPU; no public project compiles RoPE inside a kernel)",
		"nothing: the backend selects the variant (kernel_variants in the run's summary); to run the fused kernel, lower seq until it passes, or check a newer chip with --chip"}
	RuleDim5120 = Rule{"dim-5120", Warning,
		"dim below 5120",
		"efficiency cliff, 4.7× slower per layer", "rustane README",
		"use a smaller dim"}
)

// Rules lists every rule.
var Rules = []Rule{RuleFormat, RuleEmulator, RuleSingleIO, RuleUnsupportedOp, RuleNamedFlags, RuleLiveOutput,
	RuleBlobCount, RuleBlobFormat, RuleInner32, RuleSpatial16, RuleInputWidth, RuleMinSurface, RuleChannels32K,
	RuleSoftmaxPow2, RuleSRAM, RuleM5Align, RuleDMA1MiB, RuleKernelConfig, RuleGQA, RuleArch, RuleDim128, RuleHidden16, RuleSeqWall, RuleDim5120, RuleMaxDim, RuleVariant}

const (
	maxBlobSlots  = 16
	maxInputWidth = 16384
	minSurface    = 49 * 1024
	maxChannels   = 32768
	sramBytes     = 32 << 20
)

var badOps = map[string]string{
	"gelu":                         "no gelu on the ANE: use the tanh approximation",
	"rsqrt":                        "no rsqrt: use pow(x, -0.5)",
	"reduce_mean":                  "no raw reduce_mean: use reduce_sum and mul",
	"scaled_dot_product_attention": "the ANE ignores attn_mask: decompose attention",
	"constexpr_affine_dequantize":  "bakes weights, incompatible with dynamic weights",
}

// collector groups findings per rule: one Violation per rule with its first line and up to three
// details.
type collector struct {
	kernel string
	order  []string
	byID   map[string]*Violation
	n      map[string]int
}

func (c *collector) add(r Rule, line int, format string, a ...any) {
	if c.byID == nil {
		c.byID, c.n = map[string]*Violation{}, map[string]int{}
	}
	d := fmt.Sprintf(format, a...)
	v, ok := c.byID[r.ID]
	if !ok {
		c.byID[r.ID] = &Violation{Rule: r, Kernel: c.kernel, Line: line, Detail: d}
		c.order = append(c.order, r.ID)
		c.n[r.ID] = 1
		return
	}
	c.n[r.ID]++
	if c.n[r.ID] <= 3 {
		v.Detail += "; " + d
	}
}

func (c *collector) list() []Violation {
	var out []Violation
	for _, id := range c.order {
		v := *c.byID[id]
		if n := c.n[id]; n > 3 {
			v.Detail += fmt.Sprintf("; and %d more", n-3)
		}
		out = append(out, v)
	}
	return out
}

// strictest is the chip whose rules CheckProgram and CheckConfig apply when none is named.
func strictest() chip.Chip {
	c, err := chip.Lookup(chip.Strictest)
	if err != nil {
		panic(err)
	}
	return c
}

// CheckProgram checks one generated kernel for the strictest chip family (CheckProgramFor).
func CheckProgram(k *mil.Kernel) []Violation { return CheckProgramFor(k, strictest()) }

// CheckProgramFor checks one generated kernel for chip ch: its MIL text, its blobs and its
// surfaces.
func CheckProgramFor(k *mil.Kernel, ch chip.Chip) []Violation {
	c := &collector{kernel: k.Name}
	p, err := mil.Parse(k.MIL)
	if err != nil {
		c.add(RuleEmulator, 0, "%v", err)
		return c.list()
	}
	if p.Version != "1.3" || !p.BuildInfo || p.Func != "main" || p.Target != "ios18" {
		c.add(RuleFormat, 1, "header is program(%s), buildInfo %t, func %s<%s>", p.Version, p.BuildInfo, p.Func, p.Target)
	}
	if len(p.Inputs) != 1 || len(p.Outputs) != 1 {
		c.add(RuleSingleIO, 0, "%d inputs and %d outputs", len(p.Inputs), len(p.Outputs))
	}
	types := map[string]mil.Type{}
	consts := map[string]*mil.Literal{}
	for _, in := range p.Inputs {
		types[in.Name] = in.Type
		checkDims(c, ch, 0, in.Name, in.Type)
	}
	slots, biggest := 0, 0
	for _, op := range p.Ops {
		types[op.Out] = op.Type
		if op.Name == "" {
			c.add(RuleFormat, op.Line, "op %s (%s) has no name", op.Out, op.Kind)
		}
		if why, bad := badOps[op.Kind]; bad {
			c.add(RuleUnsupportedOp, op.Line, "%s: %s", op.Kind, why)
		}
		if op.Kind == "conv" {
			if _, b := op.Args["bias"]; b {
				c.add(RuleUnsupportedOp, op.Line, "conv with bias=: add the bias separately")
			}
		}
		switch op.Kind {
		case "const":
			consts[op.Out] = op.Val
			if op.Val != nil && op.Val.BlobPath != "" {
				slots++
				checkBlob(c, k, op)
			}
			continue
		case "matmul":
			for _, f := range []string{"transpose_x", "transpose_y"} {
				if a, ok := op.Args[f]; ok && a.Ref == "" {
					c.add(RuleNamedFlags, op.Line, "matmul %s: %s is an inline literal", op.Out, f)
				}
			}
			checkInner(c, op, types, consts)
		case "mul", "add", "pow":
			for _, a := range op.Args {
				if l := consts[a.Ref]; l != nil && !l.Type.Tensor {
					slots++
				} else if a.Lit != nil && !a.Lit.Type.Tensor {
					slots++
				}
			}
		case "softmax":
			if ax, ok := op.Args["axis"]; ok {
				if n := softmaxLen(op, ax, types, consts); n > 0 && bits.OnesCount(uint(n)) != 1 {
					c.add(RuleSoftmaxPow2, op.Line, "softmax %s along an axis of length %d", op.Out, n)
				}
			}
		}
		checkDims(c, ch, op.Line, op.Out, op.Type)
		if op.Type.Tensor {
			biggest = max(biggest, 2*prod(op.Type.Shape))
			if len(op.Type.Shape) > 1 && op.Type.Shape[1] >= maxChannels {
				c.add(RuleChannels32K, op.Line, "%s has %d channels", op.Out, op.Type.Shape[1])
			}
		}
	}
	if slots > maxBlobSlots {
		c.add(RuleBlobCount, 0, "%d BLOBFILE tensors + scalar-operand ops, more than %d", slots, maxBlobSlots)
	}
	if len(p.Outputs) == 1 {
		if _, ok := types[p.Outputs[0]]; !ok || consts[p.Outputs[0]] != nil {
			c.add(RuleLiveOutput, p.OutLine, "returns %q", p.Outputs[0])
		}
	}
	if _, err := emu.Compile(k.MIL, k.Blobs); err != nil {
		c.add(RuleEmulator, 0, "%v", err)
	}
	// Surfaces.
	for _, s := range []struct {
		what  string
		shape mil.Shape
	}{{"input", k.In}, {"output", k.Out}} {
		w := s.shape.S()
		if w < 16 || w%16 != 0 {
			c.add(RuleSpatial16, 0, "%s %v has spatial width %d", s.what, s.shape, w)
		}
		if s.shape.Bytes() < minSurface {
			c.add(RuleMinSurface, 0, "%s %v is %d bytes (< %d)", s.what, s.shape, s.shape.Bytes(), minSurface)
		}
		if s.shape.C() >= maxChannels {
			c.add(RuleChannels32K, 0, "%s %v has %d channels", s.what, s.shape, s.shape.C())
		}
		if (2*w)%128 != 0 {
			c.add(RuleM5Align, 0, "%s rows are %d bytes", s.what, 2*w)
		}
		if s.shape.Bytes()%(1<<20) == 0 {
			c.add(RuleDMA1MiB, 0, "%s is %d MiB exactly", s.what, s.shape.Bytes()>>20)
		}
	}
	if w := k.In.S(); w > maxInputWidth {
		c.add(RuleInputWidth, 0, "input spatial width %d", w)
	}
	if ws := k.In.Bytes() + k.Out.Bytes() + biggest; ws > sramBytes {
		c.add(RuleSRAM, 0, "working set ≈ %.1f MB (input %.1f + output %.1f + largest intermediate %.1f)",
			mb(ws), mb(k.In.Bytes()), mb(k.Out.Bytes()), mb(biggest))
	}
	return c.list()
}

// checkDims reports a tensor with a dimension over the chip's limit.
func checkDims(c *collector, ch chip.Chip, line int, name string, t mil.Type) {
	if !t.Tensor {
		return
	}
	for i, d := range t.Shape {
		if d > ch.MaxDim {
			c.add(RuleMaxDim, line, "%s %v: dimension %d is %d > %d (%s)", name, t.Shape, i, d, ch.MaxDim, ch.Name)
			return
		}
	}
}

func mb(b int) float64 { return float64(b) / 1e6 }

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func checkBlob(c *collector, k *mil.Kernel, op *mil.Op) {
	l := op.Val
	if l.BlobOff != mil.BlobChunkOffset {
		c.add(RuleBlobFormat, op.Line, "%s: BLOBFILE offset %d, want %d", op.Out, l.BlobOff, mil.BlobChunkOffset)
	}
	b, ok := k.Blobs[l.BlobPath]
	if !ok {
		c.add(RuleBlobFormat, op.Line, "%s: blob %s missing from the kernel", op.Out, l.BlobPath)
		return
	}
	if _, err := mil.ParseBlob(b, l.BlobOff, prod(l.Type.Shape)); err != nil {
		c.add(RuleBlobFormat, op.Line, "%s: %v", op.Out, err)
	}
}

// checkInner checks the contracted dimension of a matmul from the operands' declared types.
func checkInner(c *collector, op *mil.Op, types map[string]mil.Type, consts map[string]*mil.Literal) {
	x, okx := types[op.Args["x"].Ref]
	if !okx || len(x.Shape) < 2 {
		return
	}
	k := x.Shape[len(x.Shape)-1]
	if tx, ok := op.Args["transpose_x"]; ok && literal(tx, consts) != nil && literal(tx, consts).Bool {
		k = x.Shape[len(x.Shape)-2]
	}
	if k%32 != 0 {
		c.add(RuleInner32, op.Line, "matmul %s contracts over %d", op.Out, k)
	}
}

// literal resolves a const argument (inline or named), nil if it is not a const.
func literal(a mil.Arg, consts map[string]*mil.Literal) *mil.Literal {
	if a.Lit != nil {
		return a.Lit
	}
	return consts[a.Ref]
}

func softmaxLen(op *mil.Op, ax mil.Arg, types map[string]mil.Type, consts map[string]*mil.Literal) int {
	l := literal(ax, consts)
	x, ok := types[op.Args["x"].Ref]
	if l == nil || len(l.Nums) != 1 || !ok {
		return 0
	}
	axis := int(l.Nums[0])
	if axis < 0 {
		axis += len(x.Shape)
	}
	if axis < 0 || axis >= len(x.Shape) {
		return 0
	}
	return x.Shape[axis]
}

// CheckConfig is CheckConfigFor the strictest chip family: a config it passes compiles on every
// Apple silicon chip the checker knows.
func CheckConfig(m config.Model) []Violation { return CheckConfigFor(m, strictest()) }

// CheckConfigFor runs the config rules and, for an MHA config, generates the eight kernels of a
// layer and checks each for chip ch. Violations are sorted errors first.
func CheckConfigFor(m config.Model, ch chip.Chip) []Violation {
	c := &collector{}
	kv := m.KVHeads
	if kv == 0 {
		kv = m.Heads
	}
	if kv != m.Heads {
		c.add(RuleGQA, 0, "kv_heads %d ≠ heads %d", kv, m.Heads)
	}
	if m.Activation() != "swiglu" {
		c.add(RuleArch, 0, "model.act = %s", m.Activation())
	}
	if m.QKNorm {
		c.add(RuleArch, 0, "model.qk_norm = true")
	}
	if m.Dim%128 != 0 {
		c.add(RuleDim128, 0, "dim %d (%d mod 128 = %d)", m.Dim, m.Dim, m.Dim%128)
	}
	if m.FFN%16 != 0 {
		c.add(RuleHidden16, 0, "ffn %d", m.FFN)
	}
	if m.Seq >= 1024 && m.Dim >= 768 {
		c.add(RuleSeqWall, 0, "seq %d at dim %d", m.Seq, m.Dim)
	}
	if m.Dim >= 5120 {
		c.add(RuleDim5120, 0, "dim %d", m.Dim)
	}
	vs := c.list()
	if kv == m.Heads {
		kc := mil.FromModel(m)
		ks, err := mil.Kernels(kc)
		if err != nil {
			vs = append(vs, Violation{Rule: RuleKernelConfig, Detail: err.Error()})
		}
		vs = append(vs, checkKernels(kc, ks, ch)...)
	}
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].Rule.Severity > vs[j].Rule.Severity })
	return vs
}

// checkKernels checks the kernels a backend runs for chip ch: each of ks, except that a fused kernel
// breaking an error rule whose variant (mil.Slots) breaks none is judged as the backend will run
// it — the variant's kernels' violations, and one RuleVariant warning naming what the fused kernel
// breaks. When the variant breaks an error rule too, both kernels' errors are reported.
func checkKernels(kc mil.Config, ks []*mil.Kernel, ch chip.Chip) []Violation {
	slots := map[string]mil.Slot{}
	for _, sl := range mil.Slots(kc) {
		slots[sl.Fused] = sl
	}
	var vs []Violation
	for _, k := range ks {
		kv := CheckProgramFor(k, ch)
		errs := Errors(kv)
		sl, ok := slots[k.Name]
		if len(errs) == 0 || !ok {
			vs = append(vs, kv...)
			continue
		}
		var alt []Violation
		for _, n := range sl.Kernels {
			vk, err := mil.Generate(n, kc)
			if err != nil {
				alt = append(alt, Violation{Rule: RuleKernelConfig, Kernel: n, Detail: err.Error()})
				continue
			}
			alt = append(alt, CheckProgramFor(vk, ch)...)
		}
		if len(Errors(alt)) > 0 {
			vs = append(append(vs, kv...), Errors(alt)...)
			continue
		}
		vs = append(vs, Violation{Rule: RuleVariant, Kernel: k.Name,
			Variant: sl.Variant,
			Detail:  fmt.Sprintf("%s %s; the backend runs its %s variant (%s) instead", k.Name, brokenRules(errs, ch), sl.Variant, strings.Join(sl.Kernels, " + "))})
		vs = append(vs, alt...)
	}
	return vs
}

// brokenRules says which error rules a kernel breaks on ch, each with its first finding and its
// source: "breaks max-dim (…; source: …) on m1".
func brokenRules(errs []Violation, ch chip.Chip) string {
	var p []string
	for _, v := range errs {
		d := v.Detail
		if i := strings.Index(d, "; "); i > 0 {
			d = d[:i] + "; …"
		}
		p = append(p, fmt.Sprintf("%s (%s; source: %s)", v.Rule.ID, d, v.Rule.Source))
	}
	return fmt.Sprintf("breaks %s on %s", strings.Join(p, ", "), ch.Name)
}

// Gate is the checker's say on which fused kernels a backend compiles for m on chip ch: it refuses,
// with CheckKernelFor's reason, each fused kernel that CheckConfigFor replaces by its variant (a
// RuleVariant warning: the fused kernel breaks an error rule, its variant none), and lets every
// other kernel through — a config whose other kernels break an error rule is CheckConfigFor's to
// refuse before any backend is built. For aneb.Options.Gate.
func Gate(m config.Model, ch chip.Chip) func(*mil.Kernel) error {
	replaced := map[string]bool{}
	for _, v := range CheckConfigFor(m, ch) {
		if v.Rule.ID == RuleVariant.ID {
			replaced[v.Kernel] = true
		}
	}
	return func(k *mil.Kernel) error {
		if !replaced[k.Name] {
			return nil
		}
		return CheckKernelFor(k, ch)
	}
}

// CheckKernelFor is the gate a backend asks before compiling kernel k on chip ch: nil when k breaks
// no error rule there, else an error naming each broken rule with its finding and source. A fused
// kernel it refuses is never compiled; the backend runs its variant (mil.Slots) instead.
func CheckKernelFor(k *mil.Kernel, ch chip.Chip) error {
	errs := Errors(CheckProgramFor(k, ch))
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s, so it is not compiled (anelab check explains)", brokenRules(errs, ch))
}

// Report formats violations one per line ("no violations" when empty).
func Report(vs []Violation) string {
	if len(vs) == 0 {
		return "no violations"
	}
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.String())
		b.WriteByte('\n')
	}
	return b.String()
}
