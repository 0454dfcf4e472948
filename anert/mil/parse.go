package mil

import (
	"fmt"
	"strconv"
	"strings"
)

// Parsed MIL: the subset of the MIL text grammar the ANE in-memory path takes (seed-system §3.2):
//
//	program(1.3) [buildInfo = …] { func main<ios18>(tensor<fp16, [dims]> x, …) { stmt* } -> (outs); }
//	stmt := type name = op(arg=value, …)[name=string("…"), val=literal];
//	value := name | (name, …) | literal
//	literal := type(…) | BLOBFILE(path=string("…"), offset=uint64(n))
//
// Parse keeps line numbers so the emulator and the checker can point at the offending line.

// Type is a MIL value type: a scalar dtype or a tensor.
type Type struct {
	DType  string // fp16, fp32, int32, bool, string, uint64
	Shape  []int  // tensor dims
	Tensor bool
}

func (t Type) String() string {
	if !t.Tensor {
		return t.DType
	}
	return fmt.Sprintf("tensor<%s, %s>", t.DType, dims(t.Shape))
}

// Literal is a constant value.
type Literal struct {
	Type     Type
	Nums     []float64 // numeric values (scalars have one)
	Bool     bool
	Str      string
	BlobPath string // BLOBFILE path, "" if inline
	BlobOff  uint64
}

// Arg is one argument of an op: a variable, a tuple of variables, or a literal.
type Arg struct {
	Ref   string
	Tuple []string
	Lit   *Literal
}

// Op is one statement.
type Op struct {
	Line  int
	Out   string // the variable it defines
	Type  Type   // the declared type of Out
	Kind  string // "const", "matmul", …
	Args  map[string]Arg
	Order []string // argument names in source order
	Name  string   // [name=string("…")], "" when missing
	Val   *Literal // [val=…] of a const
}

// Param is a function input.
type Param struct {
	Name string
	Type Type
	Line int
}

// Program is a parsed MIL program with one function.
type Program struct {
	Version   string // "1.3"
	BuildInfo bool   // has the [buildInfo = …] attribute
	Func      string // "main"
	Target    string // "ios18"
	Inputs    []Param
	Ops       []*Op
	Outputs   []string
	OutLine   int
}

type token struct {
	kind byte // 'i' ident, 'n' number, 's' string, or the punctuation character itself
	text string
	line int
}

func lex(src string) ([]token, error) {
	var ts []token
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			s, err := strconv.Unquote(src[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("line %d: bad string %s", line, src[i:j+1])
			}
			ts = append(ts, token{'s', s, line})
			i = j + 1
		case c == '-' && i+1 < len(src) && src[i+1] == '>':
			ts = append(ts, token{'>', "->", line})
			i += 2
		case isDigit(c) || ((c == '-' || c == '+' || c == '.') && i+1 < len(src) && (isDigit(src[i+1]) || src[i+1] == '.')):
			j := i + 1
			for j < len(src) && (isDigit(src[j]) || src[j] == '.' || src[j] == 'e' || src[j] == 'E' ||
				((src[j] == '-' || src[j] == '+') && (src[j-1] == 'e' || src[j-1] == 'E'))) {
				j++
			}
			ts = append(ts, token{'n', src[i:j], line})
			i = j
		case isIdent(c):
			j := i + 1
			for j < len(src) && (isIdent(src[j]) || isDigit(src[j])) {
				j++
			}
			ts = append(ts, token{'i', src[i:j], line})
			i = j
		case strings.IndexByte("()[]{}<>,=;", c) >= 0:
			ts = append(ts, token{c, string(c), line})
			i++
		default:
			return nil, fmt.Errorf("line %d: unexpected character %q", line, c)
		}
	}
	return ts, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdent(c byte) bool {
	return c == '_' || c == '@' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

type parser struct {
	ts  []token
	pos int
}

func (p *parser) peek() token {
	if p.pos < len(p.ts) {
		return p.ts[p.pos]
	}
	line := 0
	if len(p.ts) > 0 {
		line = p.ts[len(p.ts)-1].line
	}
	return token{0, "end of text", line}
}

func (p *parser) next() token { t := p.peek(); p.pos++; return t }

func (p *parser) errf(t token, format string, a ...any) error {
	return fmt.Errorf("line %d: %s (at %q)", t.line, fmt.Sprintf(format, a...), t.text)
}

func (p *parser) expect(kind byte, text string) (token, error) {
	t := p.next()
	if t.kind != kind || (text != "" && t.text != text) {
		want := text
		if want == "" {
			want = map[byte]string{'i': "a name", 'n': "a number", 's': "a string"}[kind]
		}
		if want == "" {
			want = string(kind)
		}
		if kind == ';' && p.pos >= 2 { // a missing ; belongs to the statement before
			t.line = p.ts[p.pos-2].line
		}
		return t, p.errf(t, "expected %s", want)
	}
	return t, nil
}

// list parses open item (, item)* [,] close, calling item for each item; a trailing comma is allowed.
func (p *parser) list(open, close byte, item func() error) error {
	if _, err := p.expect(open, ""); err != nil {
		return err
	}
	for p.peek().kind != close {
		if err := item(); err != nil {
			return err
		}
		if p.peek().kind == ',' {
			p.next()
		}
	}
	p.next()
	return nil
}

// key parses "name =" and returns the name.
func (p *parser) key() (token, error) {
	k, err := p.expect('i', "")
	if err != nil {
		return k, err
	}
	_, err = p.expect('=', "")
	return k, err
}

// Parse parses MIL program text.
func Parse(src string) (*Program, error) {
	ts, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{ts: ts}
	prog := &Program{}
	if _, err := p.expect('i', "program"); err != nil {
		return nil, err
	}
	if _, err := p.expect('(', ""); err != nil {
		return nil, err
	}
	v, err := p.expect('n', "")
	if err != nil {
		return nil, err
	}
	prog.Version = v.text
	if _, err := p.expect(')', ""); err != nil {
		return nil, err
	}
	if p.peek().kind == '[' { // program attributes: skip the balanced brackets
		t := p.peek()
		if p.pos+1 < len(ts) && ts[p.pos+1].text == "buildInfo" {
			prog.BuildInfo = true
		}
		if err := p.skipBalanced('[', ']'); err != nil {
			return nil, p.errf(t, "unterminated program attributes")
		}
	}
	if _, err := p.expect('{', ""); err != nil {
		return nil, err
	}
	if _, err := p.expect('i', "func"); err != nil {
		return nil, err
	}
	f, err := p.expect('i', "")
	if err != nil {
		return nil, err
	}
	prog.Func = f.text
	if p.peek().kind == '<' {
		p.next()
		tg, err := p.expect('i', "")
		if err != nil {
			return nil, err
		}
		prog.Target = tg.text
		if _, err := p.expect('>', ""); err != nil {
			return nil, err
		}
	}
	if err := p.list('(', ')', func() error {
		line := p.peek().line
		typ, err := p.typ()
		if err != nil {
			return err
		}
		n, err := p.expect('i', "")
		if err != nil {
			return err
		}
		prog.Inputs = append(prog.Inputs, Param{n.text, typ, line})
		return nil
	}); err != nil {
		return nil, err
	}
	if _, err := p.expect('{', ""); err != nil {
		return nil, err
	}
	for p.peek().kind != '}' {
		if p.peek().kind == 0 {
			return nil, p.errf(p.peek(), "unterminated function body")
		}
		op, err := p.stmt()
		if err != nil {
			return nil, err
		}
		prog.Ops = append(prog.Ops, op)
	}
	p.next()
	arrow, err := p.expect('>', "->")
	if err != nil {
		return nil, err
	}
	prog.OutLine = arrow.line
	if err := p.list('(', ')', func() error {
		n, err := p.expect('i', "")
		if err != nil {
			return err
		}
		prog.Outputs = append(prog.Outputs, n.text)
		return nil
	}); err != nil {
		return nil, err
	}
	if _, err := p.expect(';', ""); err != nil {
		return nil, err
	}
	if _, err := p.expect('}', ""); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != 0 {
		return nil, p.errf(t, "text after the end of the program")
	}
	return prog, nil
}

func (p *parser) skipBalanced(open, close byte) error {
	depth := 0
	for {
		t := p.next()
		switch t.kind {
		case 0:
			return fmt.Errorf("unbalanced")
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
}

var scalarTypes = map[string]bool{"fp16": true, "fp32": true, "int32": true, "int64": true, "bool": true, "string": true, "uint64": true, "int8": true, "uint8": true}

// typ parses "tensor<dtype, [d, …]>" or a scalar dtype.
func (p *parser) typ() (Type, error) {
	t, err := p.expect('i', "")
	if err != nil {
		return Type{}, err
	}
	if t.text != "tensor" {
		if !scalarTypes[t.text] {
			return Type{}, p.errf(t, "unknown type")
		}
		return Type{DType: t.text}, nil
	}
	if _, err := p.expect('<', ""); err != nil {
		return Type{}, err
	}
	dt, err := p.expect('i', "")
	if err != nil {
		return Type{}, err
	}
	if !scalarTypes[dt.text] {
		return Type{}, p.errf(dt, "unknown element type")
	}
	if _, err := p.expect(',', ""); err != nil {
		return Type{}, err
	}
	shape := []int{}
	if err := p.list('[', ']', func() error {
		n, err := p.expect('n', "")
		if err != nil {
			return err
		}
		d, err := strconv.Atoi(n.text)
		if err != nil || d < 0 {
			return p.errf(n, "bad dimension")
		}
		shape = append(shape, d)
		return nil
	}); err != nil {
		return Type{}, err
	}
	if _, err := p.expect('>', ""); err != nil {
		return Type{}, err
	}
	return Type{DType: dt.text, Shape: shape, Tensor: true}, nil
}

func (p *parser) stmt() (*Op, error) {
	line := p.peek().line
	typ, err := p.typ()
	if err != nil {
		return nil, err
	}
	out, err := p.expect('i', "")
	if err != nil {
		return nil, err
	}
	if _, err := p.expect('=', ""); err != nil {
		return nil, err
	}
	kind, err := p.expect('i', "")
	if err != nil {
		return nil, err
	}
	op := &Op{Line: line, Out: out.text, Type: typ, Kind: kind.text, Args: map[string]Arg{}}
	if err := p.list('(', ')', func() error {
		k, err := p.key()
		if err != nil {
			return err
		}
		a, err := p.value()
		if err != nil {
			return err
		}
		if _, dup := op.Args[k.text]; dup {
			return p.errf(k, "argument given twice")
		}
		op.Args[k.text] = a
		op.Order = append(op.Order, k.text)
		if t := p.peek(); t.kind != ',' && t.kind != ')' {
			return p.errf(t, "expected , or )")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if p.peek().kind == '[' {
		if err := p.list('[', ']', func() error {
			k, err := p.key()
			if err != nil {
				return err
			}
			lt := p.peek()
			l, err := p.literal()
			if err != nil {
				return err
			}
			switch k.text {
			case "name":
				if l.Type.DType != "string" || l.Type.Tensor {
					return p.errf(lt, "name must be a string(\"…\")")
				}
				op.Name = l.Str
			case "val":
				op.Val = l
			default:
				return p.errf(k, "unknown op attribute")
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if _, err := p.expect(';', ""); err != nil {
		return nil, err
	}
	return op, nil
}

func (p *parser) value() (Arg, error) {
	t := p.peek()
	switch {
	case t.kind == '(':
		var names []string
		err := p.list('(', ')', func() error {
			n, err := p.expect('i', "")
			if err != nil {
				return err
			}
			names = append(names, n.text)
			return nil
		})
		if err != nil {
			return Arg{}, err
		}
		return Arg{Tuple: names}, nil
	case t.kind == 'i' && (t.text == "tensor" || scalarTypes[t.text]) && p.pos+1 < len(p.ts) && (p.ts[p.pos+1].kind == '(' || p.ts[p.pos+1].kind == '<'):
		l, err := p.literal()
		return Arg{Lit: l}, err
	case t.kind == 'i':
		p.next()
		return Arg{Ref: t.text}, nil
	}
	return Arg{}, p.errf(t, "expected a variable, a tuple or a literal")
}

// literal parses type(…) with a scalar, a [list] or a BLOBFILE(…) inside.
func (p *parser) literal() (*Literal, error) {
	typ, err := p.typ()
	if err != nil {
		return nil, err
	}
	l := &Literal{Type: typ}
	if _, err := p.expect('(', ""); err != nil {
		return nil, err
	}
	t := p.peek()
	switch {
	case t.kind == 'i' && t.text == "BLOBFILE":
		p.next()
		if err := p.list('(', ')', func() error {
			k, err := p.key()
			if err != nil {
				return err
			}
			v, err := p.literal()
			if err != nil {
				return err
			}
			switch k.text {
			case "path":
				l.BlobPath = v.Str
			case "offset":
				if len(v.Nums) != 1 {
					return p.errf(k, "BLOBFILE offset must be one number")
				}
				l.BlobOff = uint64(v.Nums[0])
			default:
				return p.errf(k, "unknown BLOBFILE field")
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if l.BlobPath == "" {
			return nil, p.errf(t, "BLOBFILE without a path")
		}
	case t.kind == '[':
		if err := p.list('[', ']', func() error {
			n, err := p.num()
			if err != nil {
				return err
			}
			l.Nums = append(l.Nums, n)
			return nil
		}); err != nil {
			return nil, err
		}
	case t.kind == 's':
		p.next()
		l.Str = t.text
	case t.kind == 'i' && (t.text == "true" || t.text == "false"):
		p.next()
		l.Bool = t.text == "true"
		if t.text == "true" {
			l.Nums = []float64{1}
		} else {
			l.Nums = []float64{0}
		}
	default:
		n, err := p.num()
		if err != nil {
			return nil, err
		}
		l.Nums = []float64{n}
	}
	if _, err := p.expect(')', ""); err != nil {
		return nil, err
	}
	return l, nil
}

func (p *parser) num() (float64, error) {
	t := p.next()
	if t.kind == 'i' && (t.text == "inf" || t.text == "nan") {
		v, _ := strconv.ParseFloat(t.text, 64)
		return v, nil
	}
	if t.kind != 'n' {
		return 0, p.errf(t, "expected a number")
	}
	v, err := strconv.ParseFloat(t.text, 64)
	if err != nil {
		return 0, p.errf(t, "bad number")
	}
	return v, nil
}
