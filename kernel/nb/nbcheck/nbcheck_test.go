package nbcheck

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name     string
		ipynb    string
		problems []string // substrings, one per expected problem
		png      int
		html     int
		missing  []string // MIME types Require should name
	}{
		{
			name: "clean rich notebook",
			ipynb: `{"cells":[
				{"cell_type":"markdown","source":"# title"},
				{"cell_type":"code","execution_count":1,"source":["%%\n","nb.Show()"],"outputs":[
					{"output_type":"stream","name":"stdout","text":["step 1\n","step 2\n"]},
					{"output_type":"stream","name":"stderr","text":"gopls is not installed\n"},
					{"output_type":"display_data","data":{"image/png":"iVBOR","text/plain":"<plot>"}},
					{"output_type":"display_data","data":{"text/html":["<table>","</table>"]}}]}]}`,
			png: 1, html: 1,
		},
		{
			name: "error output and panic on stderr",
			ipynb: `{"cells":[
				{"cell_type":"code","execution_count":1,"source":"x := 1","outputs":[
					{"output_type":"error","ename":"ERROR","evalue":"failed to run","traceback":[]}]},
				{"cell_type":"code","execution_count":2,"source":"%%\npanic(1)","outputs":[
					{"output_type":"stream","name":"stderr","text":"panic: 1\n\ngoroutine 1 [running]:\n"}]}]}`,
			problems: []string{"cell 1 (x := 1): error output ERROR: failed to run", "cell 2 (%%): stderr shows a crash: panic: 1"},
			missing:  []string{"image/png", "text/html"},
		},
		{
			name: "a cell that never ran",
			ipynb: `{"cells":[
				{"cell_type":"code","execution_count":null,"source":"","outputs":[]},
				{"cell_type":"code","execution_count":3,"source":"","outputs":[
					{"output_type":"execute_result","data":{"text/html":"<b>x</b>"}}]}]}`,
			html: 1, problems: nil, missing: []string{"image/png", "1 of 2 code cells did not run"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Check([]byte(c.ipynb))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Problems) != len(c.problems) {
				t.Fatalf("problems = %q, want %d", r.Problems, len(c.problems))
			}
			for i, p := range c.problems {
				if !strings.Contains(r.Problems[i], p) {
					t.Errorf("problem %d = %q, want it to contain %q", i, r.Problems[i], p)
				}
			}
			if r.MIME["image/png"] != c.png || r.MIME["text/html"] != c.html {
				t.Errorf("png, html = %d, %d; want %d, %d", r.MIME["image/png"], r.MIME["text/html"], c.png, c.html)
			}
			err = r.Require("image/png", "text/html")
			if len(c.problems) == 0 && len(c.missing) == 0 {
				if err != nil {
					t.Errorf("Require: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Require: no error")
			}
			for _, m := range c.missing {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("Require error %q does not name %q", err, m)
				}
			}
		})
	}
}

func TestCheckRejectsNonNotebook(t *testing.T) {
	if _, err := Check([]byte("not json")); err == nil {
		t.Fatal("no error for a file that is not JSON")
	}
}
