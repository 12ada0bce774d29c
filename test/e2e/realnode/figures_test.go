package realnode

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"text/tabwriter"
)

// figures are what the suite measured, printed together when it ends: the note's figures.
var figures figureList

type figureList struct {
	mu   sync.Mutex
	rows [][2]string
}

// figure logs a measurement on t and keeps it for the summary.
func figure(t testing.TB, name, format string, args ...any) {
	t.Helper()
	value := fmt.Sprintf(format, args...)
	t.Logf("figure: %s: %s", name, value)
	figures.add(name, value)
}

func (f *figureList) add(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append(f.rows, [2]string{name, value})
}

// printFigures writes the summary table.
func printFigures(w io.Writer) {
	figures.mu.Lock()
	defer figures.mu.Unlock()
	if len(figures.rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nreal-node figures:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range figures.rows {
		fmt.Fprintf(tw, "  %s\t%s\n", r[0], r[1])
	}
	_ = tw.Flush()
}
