package ckpt

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
)

// Diff is one model dimension that differs between a checkpoint's config and the wanted one.
type Diff struct {
	Field       string // config field name, as in JSON: "model.ffn"
	Saved, Want int
	// Values is set instead of Saved/Want for an architecture field that decides which
	// parameters exist (model.act, model.qk_norm, model.untied_head): "checkpoint relu2, config swiglu".
	Values string
}

func (d Diff) String() string {
	if d.Values != "" {
		return d.Field + ": " + d.Values
	}
	return fmt.Sprintf("%s: checkpoint %d, config %d", d.Field, d.Saved, d.Want)
}

// Mismatch is every differing model dimension; CompareModel returns it as an error.
type Mismatch []Diff

func (m Mismatch) Error() string {
	parts := make([]string, len(m))
	for i, d := range m {
		parts[i] = d.String()
	}
	return "the checkpoint's model differs from the config's: " + strings.Join(parts, "; ")
}

// CompareModel lists every integer dimension of config.Model (dim, layers, heads, kv_heads, ffn,
// seq, vocab, and any added later) that differs between saved and want, by config field name, as
// a Mismatch error; nil if all agree. kv_heads is compared as the effective count (0 = heads).
// So are the architecture fields that decide which parameters exist: act (gated or not: w3),
// qk_norm (q_norm, k_norm) and untied_head (head), "" act read as swiglu. Other fields (pos,
// softcap, norm_eps, zero_init, …) change the function or the init, not the tensors, and are not
// compared.
func CompareModel(saved, want config.Model) error {
	saved.KVHeads, want.KVHeads = saved.KV(), want.KV()
	var m Mismatch
	for _, f := range []struct {
		name string
		a, b any
	}{{"model.act", saved.Activation(), want.Activation()}, {"model.qk_norm", saved.QKNorm, want.QKNorm},
		{"model.untied_head", saved.UntiedHead, want.UntiedHead}} {
		if f.a != f.b {
			m = append(m, Diff{Field: f.name, Values: fmt.Sprintf("checkpoint %v, config %v", f.a, f.b)})
		}
	}
	sv, wv := reflect.ValueOf(saved), reflect.ValueOf(want)
	for i := range sv.NumField() {
		f := sv.Type().Field(i)
		if f.Type.Kind() != reflect.Int {
			continue
		}
		if a, b := int(sv.Field(i).Int()), int(wv.Field(i).Int()); a != b {
			m = append(m, Diff{Field: "model." + jsonName(f), Saved: a, Want: b})
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func jsonName(f reflect.StructField) string {
	if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); n != "" && n != "-" {
		return n
	}
	return strings.ToLower(f.Name)
}

// Restore copies the checkpoint tensors named prefix + p.Name into every p.W. Every parameter
// must have a tensor of the same shape, and every checkpoint tensor under prefix a parameter;
// otherwise nothing is copied and the error lists each problem, naming the tensor, both shapes
// and, where it can tell, the model dimension behind it (comparing the checkpoint's config.Model
// with want, the model being built):
//
//	layers.3.w1: checkpoint shape [768 288], model [1024 288] (model.ffn differs: checkpoint 768, config 1024)
func (c *Checkpoint) Restore(ps []*tensor.Param, prefix string, want config.Model) error {
	byName := make(map[string]*Tensor)
	for i := range c.Tensors {
		if name, ok := strings.CutPrefix(c.Tensors[i].Name, prefix); ok {
			byName[name] = &c.Tensors[i]
		}
	}
	var diffs Mismatch
	if err := CompareModel(c.Config.Model, want); err != nil {
		diffs = err.(Mismatch)
	}
	var probs []string
	used := make(map[string]bool, len(ps))
	for _, p := range ps {
		t, ok := byName[p.Name]
		if !ok {
			probs = append(probs, fmt.Sprintf("%s: in the model, not in the checkpoint%s", p.Name, hintAll(diffs)))
			continue
		}
		used[p.Name] = true
		if !slices.Equal(t.Shape, p.Shape) {
			probs = append(probs, fmt.Sprintf("%s: checkpoint shape %v, model %v%s", p.Name, t.Shape, p.Shape, hint(t.Shape, p.Shape, diffs)))
		} else if len(p.W) != len(t.Data) {
			probs = append(probs, fmt.Sprintf("%s: model parameter has %d weights for shape %v", p.Name, len(p.W), p.Shape))
		}
	}
	for _, t := range c.Tensors {
		if name, ok := strings.CutPrefix(t.Name, prefix); ok && !used[name] {
			probs = append(probs, fmt.Sprintf("%s: in the checkpoint, not in the model%s", name, hintAll(diffs)))
		}
	}
	if count := len(probs); count > 0 {
		const show = 20
		more := ""
		if count > show {
			more = fmt.Sprintf("\n  … and %d more", len(probs)-show)
			probs = probs[:show]
		}
		file := c.Path
		if file == "" {
			file = "the checkpoint"
		}
		return fmt.Errorf("ckpt: %s does not fit the model (%d problem(s); build the model from the checkpoint's config or start fresh):\n  %s%s",
			file, count, strings.Join(probs, "\n  "), more)
	}
	for _, p := range ps {
		copy(p.W, byName[p.Name].Data)
	}
	return nil
}

// hint names the model dimensions that explain a shape difference: for each axis that differs,
// the config fields whose saved and wanted values are exactly the two sizes; failing that, every
// differing field.
func hint(saved, want []int, diffs Mismatch) string {
	var names []string
	if len(saved) == len(want) {
		for i := range saved {
			if saved[i] == want[i] {
				continue
			}
			for _, d := range diffs {
				if d.Values == "" && d.Saved == saved[i] && d.Want == want[i] && !slices.ContainsFunc(names, func(s string) bool {
					return strings.HasPrefix(s, d.Field+" ")
				}) {
					names = append(names, fmt.Sprintf("%s differs: checkpoint %d, config %d", d.Field, d.Saved, d.Want))
				}
			}
		}
	}
	if len(names) == 0 {
		return hintAll(diffs)
	}
	return " (" + strings.Join(names, "; ") + ")"
}

func hintAll(diffs Mismatch) string {
	if len(diffs) == 0 {
		return ""
	}
	parts := make([]string, len(diffs))
	for i, d := range diffs {
		parts[i] = fmt.Sprintf("%s %d → %d", d.Field, d.Saved, d.Want)
		if d.Values != "" {
			parts[i] = d.String()
		}
	}
	return " (the configs differ: " + strings.Join(parts, ", ") + ")"
}
