// Command build writes every image of internal/image to a folder as
// docker-archive tarballs, from the static binaries `make image` builds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/rbac-proxy/rbac-proxy/internal/image"
)

func main() {
	bin := flag.String("bin", "bin", "folder holding the binaries")
	out := flag.String("out", "bin/images", "folder to write <name>.tar to")
	version := flag.String("version", "dev", "tag of every image")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	built, err := image.BuildAll(ctx, *bin, *out, *version)
	for _, b := range built {
		fmt.Printf("%-40s %6.1f MiB  %s  %s\n", b.Ref, float64(b.Size)/(1<<20), b.Path, b.ID)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	fmt.Printf("%d images in %s\n", len(built), time.Since(start).Round(10*time.Millisecond))
}
