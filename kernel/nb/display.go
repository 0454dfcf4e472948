package nb

import (
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/janpfeifer/gonb/gonbui"
)

// screen is where results go: the notebook (gonbui) inside a GoNB cell, text elsewhere.
type screen interface {
	HTML(html, text string)       // a persistent HTML block; text is its plain form
	PNG(png []byte, name string)  // a persistent image; name is a file name stem
	Update(id, html, text string) // a transient block that each call replaces; "" clears it
	Sync()                        // wait until everything sent is shown
	Notebook() bool
}

// out is the current screen; tests replace it.
var out screen = pickScreen()

func pickScreen() screen {
	if gonbui.IsNotebook {
		return notebook{}
	}
	return &console{w: os.Stdout}
}

// notebook shows results in the GoNB cell.
type notebook struct{}

func (notebook) HTML(h, _ string)       { gonbui.DisplayHTML(h) }
func (notebook) PNG(b []byte, _ string) { gonbui.DisplayPng(b) }
func (notebook) Update(id, h, _ string) { gonbui.UpdateHTML(id, h) }
func (notebook) Sync()                  { gonbui.Sync() }
func (notebook) Notebook() bool         { return true }

// console prints text and saves images under <lab>/nb/.
type console struct {
	w        io.Writer
	lastLive string
}

func (c *console) HTML(_, text string) { fmt.Fprintln(c.w, strings.TrimRight(text, "\n")) }

func (c *console) PNG(b []byte, name string) {
	dir := filepath.Join(LabDir(), "nb")
	path := filepath.Join(dir, safeName(name)+".png")
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		fmt.Fprintf(c.w, "(chart %s not saved: %v)\n", name, err)
		return
	}
	fmt.Fprintf(c.w, "chart: %s\n", path)
}

func (c *console) Update(_, _, text string) {
	if text != "" && text != c.lastLive {
		fmt.Fprintln(c.w, text)
		c.lastLive = text
	}
}

func (c *console) Sync()          {}
func (c *console) Notebook() bool { return false }

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	if s == "" {
		return "chart"
	}
	return s
}

// esc escapes text for HTML.
func esc(s string) string { return html.EscapeString(s) }

// Markdown-free helpers for notebooks: a heading, a note, an error box.

// Note shows a short paragraph of text.
func Note(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	out.HTML("<p>"+esc(s)+"</p>", s)
	out.Sync()
}

// showError shows err in a red box (and as text), without stopping the cell.
func showError(err error) {
	out.HTML(`<pre style="color:#b00020;white-space:pre-wrap">`+esc(err.Error())+`</pre>`, "error: "+err.Error())
	out.Sync()
}
