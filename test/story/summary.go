package story

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Check is one thing the story expects, and what it got.
type Check struct {
	Name     string
	Expected string
	Got      string
	OK       bool
}

// printSummary is step 7: one line per check.
func printSummary(out io.Writer, checks []Check, took time.Duration) {
	fmt.Fprintf(out, "\nSummary (%s)\n\n", took.Round(time.Second))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tEXPECTED\tGOT\t")
	failed := 0
	for _, c := range checks {
		mark := "✓"
		if !c.OK {
			mark = "✗"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Expected, c.Got, mark)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\n%d of %d checks passed.\n", len(checks)-failed, len(checks))
}
