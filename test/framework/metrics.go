package framework

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// RequestsTotal is the API server's own count of the requests it has answered for resource (for
// example "tokenreviews"), summed over verbs and codes: what the API server received, whatever
// the clients say they sent.
func (cp *ControlPlane) RequestsTotal(ctx context.Context, resource string) (int, error) {
	raw, err := cp.Clientset.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	label := `resource="` + resource + `"`
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, label) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		n += int(v)
	}
	return n, sc.Err()
}
