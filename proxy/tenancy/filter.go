package tenancy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// format is the grammar of an exposition.
type format int

const (
	formatText        format = iota // text 0.0.4
	formatOpenMetrics               // OpenMetrics 1.0
)

const (
	// chunkSize is about how much of the exposition is parsed at once; a
	// chunk ends at a line's end, so it holds at most chunkSize plus a line.
	chunkSize = 32 << 10
	// maxLine bounds one line, the one thing a chunk cannot cut.
	maxLine = 1 << 20
)

var eofLine = []byte("# EOF")

// filter copies the visible series of an exposition, with the metadata lines
// before them, to out.
//
// textparse parses a byte slice, so the exposition is read in chunks of whole
// lines and each chunk is parsed on its own. A chunk begins with the metadata
// lines of the family the previous one ended in (carried), so that the parser
// reads every series with the same # TYPE in force as in the whole
// exposition; the carried lines are not written again. An OpenMetrics chunk
// that is not the last gets "# EOF" appended, which its parser requires.
type filter struct {
	ctx    context.Context
	format format
	vis    *visibility
	out    func() (io.Writer, error) // called once, when the first chunk with a visible line ends
	w      io.Writer                 // nil until then
	obuf   []byte                    // what the chunk being parsed shows

	size int // chunkSize; smaller in tests, to cut families anywhere

	st   *labels.SymbolTable
	lset labels.Labels
	buf  []byte // the chunk being read: carried lines, then new ones

	// meta is the metadata block (# HELP, # TYPE, # UNIT lines) of the
	// family being read: copies, since it outlives its chunk.
	meta struct {
		name    string
		lines   [][]byte
		written bool
	}
	carried int // how many of buf's first entries are meta's lines
}

// buffers are a scrape's reader and chunk buffers, kept between scrapes:
// allocating some 100 KiB a scrape cost more in GC than the copying saves.
type buffers struct {
	br        *bufio.Reader
	buf, obuf []byte
}

var bufferPool = sync.Pool{New: func() any {
	return &buffers{br: bufio.NewReaderSize(nil, chunkSize), buf: make([]byte, 0, chunkSize+4<<10), obuf: make([]byte, 0, chunkSize+4<<10)}
}}

// run filters everything r yields.
func (f *filter) run(r io.Reader) error {
	b := bufferPool.Get().(*buffers)
	b.br.Reset(r)
	br := b.br
	f.buf, f.obuf = b.buf[:0], b.obuf[:0]
	defer func() {
		b.br.Reset(nil)
		// A buffer grown by a long line goes back to its usual size.
		if cap(f.buf) <= 4*chunkSize {
			b.buf = f.buf
		}
		if cap(f.obuf) <= 4*chunkSize {
			b.obuf = f.obuf
		}
		bufferPool.Put(b)
	}()
	for {
		lineStart := len(f.buf)
		var err error
		for {
			var part []byte
			part, err = br.ReadSlice('\n')
			f.buf = append(f.buf, part...)
			if len(f.buf)-lineStart > maxLine {
				return fmt.Errorf("a line of the exposition is longer than %d bytes", maxLine)
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the upstream's exposition: %w", err)
		}
		line := f.buf[lineStart:]
		if len(line) > 0 && line[len(line)-1] != '\n' {
			f.buf = append(f.buf, '\n')
		}
		if f.format == formatOpenMetrics && bytes.Equal(bytes.TrimSuffix(line, []byte("\n")), eofLine) {
			// Nothing may follow # EOF; the parser is never shown what
			// does, so it is refused here.
			if _, perr := br.Peek(1); !errors.Is(perr, io.EOF) {
				return errors.New("the upstream's exposition has data after # EOF")
			}
			return f.chunk(true)
		}
		if errors.Is(err, io.EOF) {
			return f.chunk(true)
		}
		if len(f.buf) >= f.size {
			if err := f.chunk(false); err != nil {
				return err
			}
		}
	}
}

// chunk parses buf and writes what is visible; the last chunk (final) of an
// OpenMetrics exposition must end in # EOF, which is then written too.
func (f *filter) chunk(final bool) error {
	if err := f.ctx.Err(); err != nil {
		return err
	}
	data := f.buf
	if f.format == formatOpenMetrics && !final {
		data = append(data, "# EOF\n"...)
	}
	// PromParser appends a newline to its input: spare capacity keeps it
	// in data's array, where lineOf finds every entry.
	if cap(data) == len(data) {
		data = append(data, 0)[:len(data)]
	}
	var p textparse.Parser
	if f.format == formatOpenMetrics {
		p = textparse.NewOpenMetricsParser(data, f.st)
	} else {
		p = textparse.NewPromParser(data, f.st, false)
	}
	lines := lineFinder{data: data}
	skip := f.carried
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("parsing the upstream's exposition: %w", err)
		}
		var at []byte // a slice of the entry, which lineOf finds the line of
		switch e {
		case textparse.EntryHelp:
			at, _ = p.Help()
		case textparse.EntryType:
			at, _ = p.Type()
		case textparse.EntryUnit:
			at, _ = p.Unit()
		case textparse.EntryComment:
			at = p.Comment()
		case textparse.EntrySeries:
			at, _, _ = p.Series()
		default:
			return fmt.Errorf("parsing the upstream's exposition: unexpected entry %d", e)
		}
		line, err := lines.of(at)
		if err != nil {
			return err
		}
		// Comments are dropped: free text, no family of their own.
		switch e {
		case textparse.EntryHelp, textparse.EntryType, textparse.EntryUnit:
			if skip > 0 { // a carried line, already in meta
				skip--
				continue
			}
			f.metadata(at, line)
		case textparse.EntrySeries:
			ok, err := f.visible(p, at)
			if err != nil {
				return err
			}
			if ok {
				f.series(line)
			}
		}
	}
	if err := lines.rest(f.format); err != nil {
		return err
	}
	if final && f.format == formatOpenMetrics && (f.w != nil || len(f.obuf) > 0) {
		f.obuf = append(f.obuf, "# EOF\n"...)
	}
	// A chunk is written once it parsed whole, so that an error in the
	// first one leaves the response unwritten.
	if len(f.obuf) > 0 {
		if f.w == nil {
			w, err := f.out()
			if err != nil {
				return err
			}
			f.w = w
		}
		if _, err := f.w.Write(f.obuf); err != nil {
			return err
		}
		f.obuf = f.obuf[:0]
	}
	// The next chunk starts with the family's metadata lines, in data's
	// array (grown, if it was, by the # EOF appended).
	f.buf = data[:0]
	for _, l := range f.meta.lines {
		f.buf = append(f.buf, l...)
	}
	f.carried = len(f.meta.lines)
	return nil
}

// visible decides whether the series p is at is visible; series is its
// bytes up to the end of its labels.
//
// The decision depends on the labels only, not on the metric name, and an
// exporter repeats each GPU's label set in every family: decisions are kept
// by the raw bytes of the label set, from the first brace, so that the
// labels of each distinct set are built (p.Labels, which sorts them) once
// per scrape. The same bytes always parse to the same labels: the one
// exception, le and quantile values normalized by family type, cannot be a
// namespace label (newVisibility keeps no decisions if one is configured). A
// series without a brace has no label but its name.
func (f *filter) visible(p textparse.Parser, series []byte) (bool, error) {
	brace := bytes.IndexByte(series, '{')
	if brace < 0 {
		return false, nil
	}
	key := series[brace:]
	if ok, seen := f.vis.bySet[string(key)]; seen {
		return ok, nil
	}
	p.Labels(&f.lset)
	ok, err := f.vis.visible(f.ctx, f.lset)
	if err == nil && f.vis.bySet != nil && f.vis.setBytes+len(key) <= maxSetBytes {
		f.vis.setBytes += len(key)
		f.vis.bySet[string(key)] = ok
	}
	return ok, err
}

// metaKindLen is the length of "# HELP", "# TYPE" and "# UNIT": what tells
// a metadata line's kind.
const metaKindLen = len("# HELP")

// metadata notes a # HELP, # TYPE or # UNIT line of family name; one of a
// family whose series were already written is written at once.
func (f *filter) metadata(name, line []byte) {
	if string(name) != f.meta.name {
		f.meta.name = string(name)
		f.meta.lines = f.meta.lines[:0]
		f.meta.written = false
	}
	// A repeated # HELP, # TYPE or # UNIT replaces the one kept: every chunk
	// begins with these lines again, so keeping each repeat would let an
	// upstream make one scrape's work grow with the square of its lines.
	kept := false
	for i, l := range f.meta.lines {
		if len(l) >= metaKindLen && len(line) >= metaKindLen && bytes.Equal(l[:metaKindLen], line[:metaKindLen]) {
			f.meta.lines[i], kept = bytes.Clone(line), true
		}
	}
	if !kept {
		f.meta.lines = append(f.meta.lines, bytes.Clone(line))
	}
	if f.meta.written {
		f.obuf = append(f.obuf, line...)
	}
}

// series writes a visible series' line, after its family's metadata lines
// when they are not written yet.
func (f *filter) series(line []byte) {
	if !f.meta.written {
		f.meta.written = true
		for _, l := range f.meta.lines {
			f.obuf = append(f.obuf, l...)
		}
	}
	f.obuf = append(f.obuf, line...)
}

// lineFinder finds, in data, the whole line of a slice the parser returned.
// The parsers return slices of their input; an entry's line is written as
// it came, byte for byte (exemplars, timestamps, escapes and all).
//
// Each entry must be exactly one line, with only blank lines between
// entries: the lexers accept a raw newline inside a quoted label value or
// name, and a line cut there would write half an entry, which the next line
// written would complete into something else.
type lineFinder struct {
	data []byte
	end  int // where the previous entry's line ended
}

var errLines = errors.New("parsing the upstream's exposition: an entry that is not one line (a raw newline in a quoted string?)")

func (l *lineFinder) of(at []byte) ([]byte, error) {
	pos := cap(l.data) - cap(at)
	// at may be empty (a quoted empty name): its first byte in the array
	// still says where it is.
	if cap(at) == 0 || pos < l.end || pos >= len(l.data) || &l.data[pos] != &at[:1][0] {
		// Not a slice of this chunk, or out of order.
		return nil, errLines
	}
	start := bytes.LastIndexByte(l.data[:pos], '\n') + 1
	n := bytes.IndexByte(l.data[pos:], '\n')
	if start < l.end || n < 0 || !blank(l.data[l.end:start]) {
		return nil, errLines
	}
	l.end = pos + n + 1
	return l.data[start:l.end], nil
}

// rest checks what follows the last entry: blank lines, and the # EOF that
// ends an OpenMetrics chunk.
func (l *lineFinder) rest(f format) error {
	tail := bytes.Trim(l.data[l.end:], " \t\n")
	if len(tail) == 0 || f == formatOpenMetrics && bytes.Equal(tail, eofLine) {
		return nil
	}
	return errLines
}

func blank(b []byte) bool { return len(bytes.Trim(b, " \t\n")) == 0 }
