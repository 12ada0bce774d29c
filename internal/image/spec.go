package image

import (
	"fmt"
	"os"
	"path/filepath"
)

// The images' names: each is tagged <name>:<version>, without a registry host
// (containerd's CRI and Docker apply their default when they import it).
const (
	// Proxy holds rbac-proxy and rbac-proxy-injector, as the Dockerfile builds it.
	Proxy = "rbac-proxy"
	// SampleExporter is the dcgm-exporter stand-in (test/images/exporter).
	// Its name holds "dcgm-exporter" so the injector's preset recognizes it
	// by image, as it recognizes NVIDIA's.
	SampleExporter = "rbac-proxy-sample-dcgm-exporter"
	// Pause is the sandbox image (test/images/pause): containerd's sandbox_image.
	Pause = "rbac-proxy-pause"
	// Prometheus is Debian's Prometheus with the shared libraries it loads.
	Prometheus = "rbac-proxy-prometheus"
)

// Ref is the reference an image is tagged and imported as.
func Ref(name, version string) string { return name + ":" + version }

// NonRootUser is the user the proxy runs as, in the image and in the
// container the injector renders.
const NonRootUser = "65532:65532"

// PrometheusBinary is where Debian's prometheus package installs it; the
// Prometheus image is built only when it is there.
const PrometheusBinary = "/usr/bin/prometheus"

// CABundle is the CA roots file the proxy image carries (for https
// upstreams), at the same path as on the build host.
const CABundle = "/etc/ssl/certs/ca-certificates.crt"

// Spec describes one image: its files (one layer on an empty base) and the
// config fields a container runtime reads.
type Spec struct {
	// Name is the repository the image is tagged in, and its tarball's name.
	Name  string
	Files []File
	// User is "uid:gid", numeric: the images hold no /etc/passwd.
	User       string
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	Labels     map[string]string
}

// Program is a static binary an image holds, built from a main package of
// this repository into bin/<Binary>.
type Program struct {
	Binary, Package string
}

// Programs are the binaries Specs reads from its binDir, and the packages
// `make image` builds them from.
var Programs = []Program{
	{"rbac-proxy", "./cmd/proxy"},
	{"rbac-proxy-injector", "./cmd/webhook"},
	{SampleExporter, "./test/images/exporter"},
	{Pause, "./test/images/pause"},
}

// Specs are the images built from the binaries in binDir (Programs): the
// proxy, the sample exporter and the sandbox; and Prometheus when
// PrometheusBinary exists. Only Prometheus's libraries are looked up here;
// the files are read when an image is written.
func Specs(binDir, version string) ([]Spec, error) {
	bin := func(name string) File {
		return File{Path: "/" + name, Source: filepath.Join(binDir, name), Mode: 0o755}
	}
	specs := []Spec{
		{
			Name: Proxy,
			Files: []File{
				{Path: CABundle, Source: CABundle, Mode: 0o644},
				bin("rbac-proxy"),
				bin("rbac-proxy-injector"),
			},
			User:       NonRootUser,
			Entrypoint: []string{"/rbac-proxy"},
			Labels: labels(Proxy, version,
				"Kubernetes authentication and authorization in front of metrics endpoints, and the webhook that injects it"),
		},
		{
			Name:       SampleExporter,
			Files:      []File{bin(SampleExporter)},
			User:       NonRootUser,
			Entrypoint: []string{"/" + SampleExporter},
			Labels:     labels(SampleExporter, version, "A dcgm-exporter stand-in serving a sample of GPU metrics, for tests"),
		},
		{
			Name:       Pause,
			Files:      []File{bin(Pause)},
			User:       "65535:65535",
			Entrypoint: []string{"/" + Pause},
			Labels:     labels(Pause, version, "The Pod sandbox: holds a Pod's namespaces until SIGTERM, for tests"),
		},
	}
	if _, err := os.Stat(PrometheusBinary); err == nil {
		s, err := prometheusSpec(version)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// labels are the OCI annotations the Dockerfile sets, for any image.
func labels(title, version, description string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": description,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
}

// prometheusSpec is Debian's Prometheus with its shared libraries and
// interpreter, laid out as the upstream image is: config in /etc/prometheus
// (empty: the test mounts its own), data in /prometheus owned by nobody.
func prometheusSpec(version string) (Spec, error) {
	libs, err := sharedLibraries(PrometheusBinary)
	if err != nil {
		return Spec{}, fmt.Errorf("image %s: %w", Prometheus, err)
	}
	files := append([]File{
		{Path: "/bin/prometheus", Source: PrometheusBinary, Mode: 0o755},
		{Path: "/etc/prometheus", Mode: 0o755},
		{Path: "/prometheus", Mode: 0o755, UID: 65534, GID: 65534},
	}, libs...)
	return Spec{
		Name:       Prometheus,
		Files:      files,
		User:       "65534:65534",
		Entrypoint: []string{"/bin/prometheus"},
		Cmd:        []string{"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"},
		WorkingDir: "/prometheus",
		Labels:     labels(Prometheus, version, "Debian's Prometheus and the shared libraries it loads, for tests"),
	}, nil
}
