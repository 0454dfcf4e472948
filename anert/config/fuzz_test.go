package config

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// FuzzDecode: no config JSON makes decoding, validation or the size formulas panic; a config
// that decodes and validates has finite, positive sizes and memory need, and survives a round
// trip through JSON unchanged (so what a run records is what it ran).
func FuzzDecode(f *testing.F) {
	for _, c := range []Config{Default(), Tiny()} {
		b, _ := json.Marshal(c)
		f.Add(b)
	}
	f.Add([]byte(`{"model":{"dim":16384,"layers":32,"heads":128,"ffn":65536}}`))
	f.Add([]byte(`{"model":{"ffn":4611686018427387904}}`))
	f.Add([]byte(`{"optim":{"beta1":1e999}}`))
	f.Add([]byte(`{"train":{"budget":"-5s"}} {}`))
	f.Add([]byte(`{"train":{"budget":1e300}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"model":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Default()
		if err := DecodeStrict(b, &c); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		p, need := c.Model.Params(), c.MemoryNeed()
		if p <= 0 || !(need > 0) || math.IsInf(need, 0) {
			t.Fatalf("valid config with %d params and memory need %v: %s", p, need, b)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("a valid config does not marshal: %v", err)
		}
		back := Default()
		if err := DecodeStrict(again, &back); err != nil {
			t.Fatalf("a valid config does not decode back: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
	})
}
