package proxy

import "sync"

// bufferPool recycles byte buffers of one size: the ReverseProxy's copy
// buffers, prefetched expositions and corked TLS records.
type bufferPool struct {
	size int
	p    sync.Pool
}

func newBufferPool(size int) *bufferPool {
	b := &bufferPool{size: size}
	b.p.New = func() any { v := make([]byte, size); return &v }
	return b
}

// Get returns a buffer of the pool's size.
func (b *bufferPool) Get() []byte { return *(b.p.Get().(*[]byte)) }

// Put takes back a buffer from Get, whatever its length now.
func (b *bufferPool) Put(v []byte) {
	v = v[:cap(v)]
	b.p.Put(&v)
}
