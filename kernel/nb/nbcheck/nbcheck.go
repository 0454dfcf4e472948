// Package nbcheck reads an executed Jupyter notebook (.ipynb JSON) and reports what its outputs
// hold: error outputs, stderr that shows a Go panic, and how many outputs of each MIME type.
// The notebook test driver uses it to fail on any error and to require rich (image/png,
// text/html) outputs.
package nbcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Report is what one executed notebook's outputs hold.
type Report struct {
	Path     string
	Cells    int            // code cells
	Executed int            // code cells with an execution count
	MIME     map[string]int // display/result outputs per MIME type ("image/png", "text/html", …)
	Problems []string       // each error output or panicking stderr, with its cell number
}

// notebook is the part of nbformat 4 that Check reads.
type notebook struct {
	Cells []struct {
		CellType       string   `json:"cell_type"`
		Source         text     `json:"source"`
		ExecutionCount *int     `json:"execution_count"`
		Outputs        []output `json:"outputs"`
	} `json:"cells"`
}

type output struct {
	OutputType string          `json:"output_type"` // stream, display_data, execute_result, error
	Name       string          `json:"name"`        // stream: stdout or stderr
	Text       text            `json:"text"`
	Data       map[string]text `json:"data"`
	EName      string          `json:"ename"`
	EValue     string          `json:"evalue"`
}

// text is nbformat's multiline string: one string or a list of lines.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = text(s)
		return nil
	}
	var lines []string
	if err := json.Unmarshal(b, &lines); err == nil {
		*t = text(strings.Join(lines, ""))
		return nil
	}
	*t = text(b) // a JSON value (e.g. application/json data): keep it raw
	return nil
}

// File checks the executed notebook at path.
func File(path string) (Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Report{Path: path}, err
	}
	r, err := Check(b)
	r.Path = path
	return r, err
}

// panicMarks are stderr texts that mean a cell's Go program crashed.
var panicMarks = []string{"panic:", "goroutine 1 [", "fatal error:"}

// Check reads an executed notebook's JSON.
func Check(ipynb []byte) (Report, error) {
	r := Report{MIME: map[string]int{}}
	var nb notebook
	if err := json.Unmarshal(ipynb, &nb); err != nil {
		return r, fmt.Errorf("not a notebook (nbformat 4 JSON): %w", err)
	}
	for i, c := range nb.Cells {
		if c.CellType != "code" {
			continue
		}
		r.Cells++
		if c.ExecutionCount != nil {
			r.Executed++
		}
		where := fmt.Sprintf("cell %d (%s)", i+1, firstLine(string(c.Source)))
		for _, o := range c.Outputs {
			switch o.OutputType {
			case "error":
				r.Problems = append(r.Problems, fmt.Sprintf("%s: error output %s: %s", where, o.EName, o.EValue))
			case "stream":
				if o.Name != "stderr" {
					continue
				}
				for _, m := range panicMarks {
					if strings.Contains(string(o.Text), m) {
						r.Problems = append(r.Problems, fmt.Sprintf("%s: stderr shows a crash: %s", where, excerpt(string(o.Text), m)))
						break
					}
				}
			case "display_data", "execute_result", "update_display_data":
				for mime := range o.Data {
					r.MIME[mime]++
				}
			}
		}
	}
	return r, nil
}

// Require returns an error listing r's problems, the code cells that did not run, and each of
// the MIME types that has no output.
func (r Report) Require(mimes ...string) error {
	p := append([]string(nil), r.Problems...)
	if r.Executed < r.Cells {
		p = append(p, fmt.Sprintf("%d of %d code cells did not run", r.Cells-r.Executed, r.Cells))
	}
	for _, m := range mimes {
		if r.MIME[m] == 0 {
			p = append(p, "no "+m+" output in any cell")
		}
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%s:\n  - %s", r.Path, strings.Join(p, "\n  - "))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

func excerpt(s, mark string) string {
	i := strings.Index(s, mark)
	s = s[i:]
	if j := strings.IndexByte(s, '\n'); j >= 0 {
		s = s[:j]
	}
	return s
}
