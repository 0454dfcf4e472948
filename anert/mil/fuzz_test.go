package mil

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no text makes the MIL parser panic or loop; what parses is well formed: every op
// defines a variable of some kind, its argument order lists exactly its arguments, and shapes are
// non-negative. Seeds: the generated kernels (whole and cut in half) and odd corners.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.mil"))
	if len(files) == 0 {
		f.Fatal("no testdata/*.mil seeds")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
		f.Add(string(b[:len(b)/2]))
	}
	f.Add(`program(1.3) { func main<ios18>(tensor<fp16, [1,2]> x) { tensor<fp16, [1,2]> y = add(x=x,y=x)[name=string("y")]; } -> (y); }`)
	f.Add(`program(1.3) { func main<ios18>(tensor<fp16, [99999999999999999999]> x) { } -> (x); }`)
	f.Add(`program(1.3) { func main(tensor<fp16, [1]> x) { tensor<fp16, [1]> c = const()[val=tensor<fp16, [1]>(BLOBFILE(path=string(""), offset=uint64(-1)))]; } -> (c); }`)
	f.Add(`program(1.3) [[[[`)
	f.Add("program(1.3) { func main<ios18>() { tensor<fp16, [1]> y = f(x=(a,b,c), z=fp32(nan))[name=string(\"\\\"\")]; } -> (y); }")
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Parse(src)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		check := func(ty Type) {
			for _, d := range ty.Shape {
				if d < 0 {
					t.Fatalf("negative dimension in %v", ty)
				}
			}
		}
		for _, in := range p.Inputs {
			check(in.Type)
		}
		for _, op := range p.Ops {
			if op.Out == "" || op.Kind == "" {
				t.Fatalf("op without a name or kind: %+v", op)
			}
			check(op.Type)
			if len(op.Order) != len(op.Args) {
				t.Fatalf("op %s: order %v but %d arguments", op.Out, op.Order, len(op.Args))
			}
			for _, a := range op.Order {
				if _, ok := op.Args[a]; !ok {
					t.Fatalf("op %s: argument %q in order but not in Args", op.Out, a)
				}
			}
		}
	})
}
