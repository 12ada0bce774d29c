package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as check -o json prints it: one object, indented two spaces, with
// a trailing newline.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// A fix is a shell command: its && stays as written.
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteTable writes the report as check -o table prints it, kubectl-like: where the settings
// come from, WORKLOADS, FINDINGS (each with its fix on the line below), NOT CHECKED, and the
// counts.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "settings: %s\n\n", r.Settings)
	row := func(cells ...string) {
		for i, c := range cells {
			cells[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintln(tw, "WORKLOADS")
	if len(r.Workloads) == 0 {
		fmt.Fprintln(tw, "(none)")
	} else {
		row("NAMESPACE", "KIND", "NAME", "PODS", "INJECTED", "STATE", "MODE", "DECIDED-BY")
		for _, wl := range r.Workloads {
			mode := ""
			if wl.Policy != nil {
				mode = wl.Policy.Mode
			}
			row(wl.Namespace, wl.Kind, wl.Name, strconv.Itoa(wl.Pods), strconv.Itoa(wl.Injected), string(wl.Injection.State), dash(mode), dash(wl.Injection.DecidedBy))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(tw, "\nFINDINGS")
	if len(r.Findings) == 0 {
		fmt.Fprintln(tw, "(none)")
	} else {
		row("SEVERITY", "CODE", "OBJECT", "MESSAGE")
		for _, f := range r.Findings {
			row(string(f.Severity), string(f.Code), objectName(f.Object), f.Message)
			row("", "", "", "fix: "+f.Fix)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(tw, "\nNOT CHECKED")
	if len(r.Unchecked) == 0 {
		fmt.Fprintln(tw, "(none)")
	} else {
		row("CHECK", "NAMESPACE", "REASON")
		for _, u := range r.Unchecked {
			row(string(u.Check), dash(u.Namespace), u.Reason)
		}
	}
	fmt.Fprintf(tw, "\n%s, %s, %d not checked\n", plural(r.Summary.Errors, "error"), plural(r.Summary.Warnings, "warning"), r.Summary.Unchecked)
	return tw.Flush()
}

// String says where the settings come from, in one line: "from Deployment NS/NAME" or "flags and
// defaults", then the reason in parentheses.
func (s Settings) String() string {
	line := "from " + s.Source
	if s.Source == SettingsFromFlags || s.Source == "" {
		line = "flags and defaults"
	}
	if s.Reason != "" {
		line += " (" + strings.NewReplacer("\t", " ", "\n", " ").Replace(s.Reason) + ")"
	}
	return line
}

// objectName is NAMESPACE/KIND/NAME, or KIND/NAME for a cluster-scoped object.
func objectName(o ObjectRef) string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Namespace + "/" + o.Kind + "/" + o.Name
}

// plural is "1 error", "2 errors".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
