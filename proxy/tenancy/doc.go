// Package tenancy filters a metrics exposition down to the series of the namespaces a caller may read.
//
// # What a caller sees
//
// A series is visible when at least one of the namespace labels (DefaultNamespaceLabels:
// namespace, exported_namespace) is set on it and every one of them that is set names a
// namespace the caller may read (Allow, asked once per namespace per scrape). A series without
// one (an idle GPU, a node-level series) is withheld. A series whose namespace and
// exported_namespace differ is visible only to a caller allowed both: which of two labels names
// the owner cannot be told from the exposition, so neither is trusted alone. An empty value is
// no value (Prometheus stores no empty label). A value that is not a namespace name (a DNS-1123
// label) is never asked about and the series is withheld. The # HELP, # TYPE and # UNIT lines of
// a family are written before its first visible series and not at all without one; comments are
// dropped; OpenMetrics' # EOF is kept. Kept lines are the upstream's bytes, exemplars,
// timestamps and escapes included.
//
// # Fail closed
//
// Nothing is passed through that the filter did not parse and attribute. Serve returns an error
// (and the caller answers 502, or aborts a begun response) for: a response other than 200; a
// Content-Type other than text/plain (version 0.0.4, 1.0.0 or none) or
// application/openmetrics-text (0.0.1, 1.0.0 or none), protobuf included; a Content-Encoding other than gzip or none; any
// parse error; OpenMetrics without # EOF or with data after it; a series with a namespace label
// twice (Prometheus itself fails such a scrape); a raw newline inside a quoted string, which the
// lexers accept but which would make an entry of two lines; a NUL byte, where the lexers stop
// reading; a line over 1 MiB; and any error of Allow. Protobuf is negotiated away
// (UpstreamAccept), not filtered.
//
// # Parser and streaming
//
// Parsing is Prometheus' own, model/textparse (PromParser for text, OpenMetricsParser for
// OpenMetrics), the parser a Prometheus scrape uses; the output is checked with it in the tests.
// It was chosen by BenchmarkParser: on the 1 MB AMD-shaped exposition it read every series'
// labels about 6× faster and with 6× less memory than prometheus/common's expfmt TextParser,
// which also returns nothing before the whole exposition is read and has no OpenMetrics parser.
// textparse parses a byte slice, so the exposition is parsed in chunks of whole lines of about
// 32 KiB (filter.go): memory held is a chunk, the metadata lines of the family being read, and
// one chunk's output, whatever the exposition's size. A chunk that parsed whole is written at
// once, so an error in the first one leaves the response unwritten. The labels of a series are
// built (and sorted) by the parser only for a label set not seen before in the scrape: a decision
// is kept by the set's raw bytes, which an exporter repeats for a GPU in every family.
package tenancy
