package tenancy

import (
	"context"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// visibility decides which series a caller sees, asking allow once per
// namespace.
type visibility struct {
	labels []string
	allow  Allow
	memo   map[string]bool
	// bySet keeps decisions by the raw bytes of a label set (filter.visible),
	// up to maxSetBytes of keys; nil when they cannot be kept.
	bySet    map[string]bool
	setBytes int
	// Scratch, per series: the value of each namespace label, and whether
	// it was seen.
	values []string
	seen   []bool
}

// maxSetBytes bounds the keys of visibility.bySet: room for the label sets
// of some hundreds of GPUs.
const maxSetBytes = 256 << 10

func newVisibility(names []string, allow Allow) *visibility {
	v := &visibility{labels: names, allow: allow, memo: map[string]bool{}, values: make([]string, len(names)), seen: make([]bool, len(names))}
	if !slices.Contains(names, "le") && !slices.Contains(names, "quantile") {
		v.bySet = map[string]bool{}
	}
	return v
}

// visible reports whether a series with labels ls is visible: at least one of
// the namespace labels is set, and each one set names a namespace the caller
// may read. A namespace label given twice is an error.
func (v *visibility) visible(ctx context.Context, ls labels.Labels) (bool, error) {
	clear(v.values)
	clear(v.seen)
	var dup string
	ls.Range(func(l labels.Label) {
		for i, name := range v.labels {
			if l.Name == name {
				if v.seen[i] {
					dup = name
				}
				v.seen[i], v.values[i] = true, l.Value
			}
		}
	})
	if dup != "" {
		return false, fmt.Errorf("a series of the upstream's exposition has the label %q twice", dup)
	}
	named := false
	for _, ns := range v.values {
		if ns == "" {
			continue // absent, or empty: Prometheus stores no empty label
		}
		named = true
		if ok, err := v.may(ctx, ns); err != nil || !ok {
			return false, err
		}
	}
	return named, nil
}

// MaxNamespaces bounds the namespaces one tenant's scrape may name, and so
// the SubjectAccessReviews it can cost: an exposition naming more fails the
// scrape (closed) instead of spending the proxy's review budget, which the
// whole-endpoint callers share, on one caller. A GPU node's exporter names a
// handful.
const MaxNamespaces = 1000

// may is allow, asked once per namespace; a value that cannot name a
// namespace is never asked about.
func (v *visibility) may(ctx context.Context, ns string) (bool, error) {
	if ok, seen := v.memo[ns]; seen {
		return ok, nil
	}
	if len(v.memo) >= MaxNamespaces {
		return false, fmt.Errorf("the exposition names more than %d namespaces: a tenant's scrape asks at most that many reviews", MaxNamespaces)
	}
	ok := false
	if len(validation.IsDNS1123Label(ns)) == 0 {
		var err error
		if ok, err = v.allow(ctx, ns); err != nil {
			return false, fmt.Errorf("deciding whether the caller may read namespace %q: %w", ns, err)
		}
	}
	v.memo[ns] = ok
	return ok, nil
}
