package nb

import (
	"fmt"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/go-gota/gota/dataframe"
	"github.com/go-gota/gota/series"
)

// Show displays df as a table: HTML in a notebook, aligned text elsewhere. cols picks and
// orders the columns (none: all). Floats are formatted by Num, never by gota's %f; numbers are
// right-aligned. A DataFrame carrying an error shows the error.
func Show(df dataframe.DataFrame, cols ...string) {
	h, t := TableHTML(df, cols...)
	out.HTML(h, t)
	out.Sync()
}

// TableHTML renders df (the cols given, or all) as an HTML table and as aligned text.
func TableHTML(df dataframe.DataFrame, cols ...string) (htmlTable, text string) {
	if df.Err != nil {
		return `<pre style="color:#b00020">` + esc("table: "+df.Err.Error()) + `</pre>`, "table: " + df.Err.Error()
	}
	if len(cols) == 0 {
		cols = df.Names()
	}
	var cells [][]string // [col][row]
	var numeric []bool
	for _, c := range cols {
		if !hasCol(df, c) {
			msg := fmt.Sprintf("table: no column %q; the columns are %s", c, strings.Join(df.Names(), ", "))
			return `<pre style="color:#b00020">` + esc(msg) + `</pre>`, msg
		}
		s := df.Col(c)
		cells = append(cells, colStrings(s))
		numeric = append(numeric, s.Type() == series.Float || s.Type() == series.Int)
	}
	return stringTable(cols, cells, numeric)
}

// stringTable renders formatted cells (cells[col][row]) under headers as an HTML table and as
// aligned text; numeric columns are right-aligned.
func stringTable(headers []string, cells [][]string, numeric []bool) (string, string) {
	n := 0
	if len(cells) > 0 {
		n = len(cells[0])
	}
	var h strings.Builder
	h.WriteString(`<table class="anelab" style="border-collapse:collapse;font-size:90%"><thead><tr>`)
	for i, c := range headers {
		fmt.Fprintf(&h, `<th style="%s;border-bottom:1px solid #888;padding:2px 8px">%s</th>`, align(numeric[i]), esc(c))
	}
	h.WriteString("</tr></thead><tbody>")
	for r := 0; r < n; r++ {
		h.WriteString("<tr>")
		for i := range headers {
			fmt.Fprintf(&h, `<td style="%s;padding:2px 8px">%s</td>`, align(numeric[i]), esc(cells[i][r]))
		}
		h.WriteString("</tr>")
	}
	fmt.Fprintf(&h, "</tbody></table><small>%d row(s)</small>", n)

	var t strings.Builder
	tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t")+"\t")
	for r := 0; r < n; r++ {
		row := make([]string, len(headers))
		for i := range headers {
			row[i] = cells[i][r]
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintf(&t, "(%d row(s))", n)
	return h.String(), t.String()
}

func align(numeric bool) string {
	if numeric {
		return "text-align:right"
	}
	return "text-align:left"
}

func hasCol(df dataframe.DataFrame, name string) bool {
	for _, c := range df.Names() {
		if c == name {
			return true
		}
	}
	return false
}

// colStrings formats a column: floats by Num, the rest as gota prints them (NaN as "").
func colStrings(s series.Series) []string {
	out := make([]string, s.Len())
	for i := range out {
		e := s.Elem(i)
		switch {
		case e.IsNA():
			out[i] = ""
		case s.Type() == series.Float:
			out[i] = Num(e.Float())
		default:
			out[i] = e.String()
		}
	}
	return out
}

// Where keeps the rows of df whose column col compares to v by op: "==", "!=", "<", "<=",
// ">", ">=" or "in" (v a slice). Chain calls for AND:
//
//	nb.Where(nb.Where(df, "status", "==", "ok"), "optim.lr", ">=", 3e-4)
func Where(df dataframe.DataFrame, col, op string, v any) dataframe.DataFrame {
	if df.Err == nil && !hasCol(df, col) {
		return dataframe.DataFrame{Err: fmt.Errorf("where: no column %q; the columns are %s", col, strings.Join(df.Names(), ", "))}
	}
	switch series.Comparator(op) {
	case series.Eq, series.Neq, series.Greater, series.GreaterEq, series.Less, series.LessEq, series.In:
	default:
		return dataframe.DataFrame{Err: fmt.Errorf("where %s %q: the operator must be one of == != < <= > >= in", col, op)}
	}
	return df.Filter(dataframe.F{Colname: col, Comparator: series.Comparator(op), Comparando: v})
}

// SortBy orders df by the columns given, ascending; a "-" before a name sorts it descending:
//
//	nb.SortBy(df, "val_loss")           // best first
//	nb.SortBy(df, "lineage", "-seq")    // per lineage, newest first
func SortBy(df dataframe.DataFrame, cols ...string) dataframe.DataFrame {
	if len(cols) == 0 {
		return df
	}
	var order []dataframe.Order
	for _, c := range cols {
		if name, ok := strings.CutPrefix(c, "-"); ok {
			order = append(order, dataframe.RevSort(name))
		} else {
			order = append(order, dataframe.Sort(c))
		}
	}
	return df.Arrange(order...)
}

// Head keeps the first n rows of df.
func Head(df dataframe.DataFrame, n int) dataframe.DataFrame {
	if df.Err != nil || df.Nrow() <= n {
		return df
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return df.Subset(idx)
}

// floatCol returns a column as float64s (NaN for missing values).
func floatCol(df dataframe.DataFrame, name string) ([]float64, error) {
	if !hasCol(df, name) {
		return nil, fmt.Errorf("no column %q; the columns are %s", name, strings.Join(df.Names(), ", "))
	}
	s := df.Col(name)
	if s.Type() != series.Float && s.Type() != series.Int && s.Type() != series.Bool {
		return nil, fmt.Errorf("column %q holds %s values, not numbers", name, s.Type())
	}
	v := make([]float64, s.Len())
	for i := range v {
		e := s.Elem(i)
		if e.IsNA() {
			v[i] = math.NaN()
		} else {
			v[i] = e.Float()
		}
	}
	return v, nil
}
