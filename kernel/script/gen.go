package script

import (
	"bytes"
	"fmt"
	"go/format"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/anelab/anelab/anert/config"
)

// Generate writes cfg as an experiment script: Go source that starts from lab.Baseline() and
// sets every field of the config, one assignment per line, so the script reproduces cfg exactly
// and shows every knob there is to turn. comment becomes the file's leading comment.
func Generate(cfg config.Config, comment, description string) ([]byte, error) {
	var body bytes.Buffer
	usesConfig := false
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fv, p := v.Field(i), path+"."+f.Name
			if fv.Kind() == reflect.Struct {
				walk(fv, p)
				continue
			}
			lit, usesCfg := literal(fv)
			usesConfig = usesConfig || usesCfg
			fmt.Fprintf(&body, "\tc%s = %s\n", p, lit)
		}
	}
	walk(reflect.ValueOf(cfg), "")

	var b bytes.Buffer
	b.WriteString("//go:build ignore\n\n")
	for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
		if l != "" {
			b.WriteString("// " + l + "\n")
		}
	}
	b.WriteString("package experiment\n\nimport (\n")
	if usesConfig {
		fmt.Fprintf(&b, "\t%q\n", ConfigPath)
	}
	fmt.Fprintf(&b, "\t%q\n)\n\n", LabPath)
	b.WriteString("func Experiment() lab.Spec {\n\tc := lab.Baseline()\n")
	b.Write(body.Bytes())
	fmt.Fprintf(&b, "\treturn lab.Spec{Description: %q, Config: c}\n}\n", description)
	return format.Source(b.Bytes())
}

// literal is v as Go source; usesConfig reports whether it names a type from package config.
func literal(v reflect.Value) (src string, usesConfig bool) {
	if v.Type() == reflect.TypeOf(config.Duration(0)) {
		d := time.Duration(v.Int())
		return fmt.Sprintf("config.Duration(%d) // %v", int64(d), d), true
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String()), false
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), false
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10), false
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64), false
	}
	panic(fmt.Sprintf("script.Generate: config field of kind %s: teach literal() to write it", v.Kind()))
}
