package inject

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ListenSetting is one change to the app container that moves where it listens. Value may hold
// {port} (the internal port) and {host} (127.0.0.1).
type ListenSetting struct {
	// Env is an environment variable to set; Arg a flag (--flag=VALUE) to set or replace.
	Env string
	Arg string
	// Aliases are other spellings of Arg that are replaced too when present (e.g. -a).
	Aliases []string
	// OnlyIfPresent replaces Arg where the container has it and adds nothing otherwise.
	OnlyIfPresent bool
	Value         string
}

// Preset knows how to move one exporter to 127.0.0.1:<internal port>.
type Preset struct {
	Name string
	// Images are substrings of the image name (without registry and tag) that identify it.
	Images []string
	// Env and Args the container may already have that identify it.
	Env  []string
	Args []string
	// Listen is what the render changes, in order.
	Listen []ListenSetting
}

// Presets is the table of known exporters. To add one: a name, how to recognize the container,
// and the env or args that set its listen address; then a golden case in testdata/mutation.
func Presets() []Preset {
	return []Preset{
		{
			// NVIDIA dcgm-exporter: -a/--address, or DCGM_EXPORTER_LISTEN (default ":9400").
			Name:   "dcgm-exporter",
			Images: []string{"dcgm-exporter"},
			Env:    []string{"DCGM_EXPORTER_LISTEN"},
			Listen: []ListenSetting{
				{Arg: "--address", Aliases: []string{"-a"}, OnlyIfPresent: true, Value: "{host}:{port}"},
				{Env: "DCGM_EXPORTER_LISTEN", Value: "{host}:{port}"},
			},
		},
		{
			// AMD device-metrics-exporter: METRICS_EXPORTER_PORT overrides the config file's port;
			// --bind is the address the AMD GPU operator passes when it puts kube-rbac-proxy in front.
			Name:   "amd-device-metrics-exporter",
			Images: []string{"device-metrics-exporter"},
			Env:    []string{"METRICS_EXPORTER_PORT"},
			Listen: []ListenSetting{
				{Arg: "--bind", Aliases: []string{"-bind"}, Value: "{host}"},
				{Env: "METRICS_EXPORTER_PORT", Value: "{port}"},
			},
		},
		{
			// Prometheus node-exporter: --web.listen-address (default ":9100").
			Name:   "node-exporter",
			Images: []string{"node-exporter"},
			Args:   []string{"--web.listen-address"},
			Listen: []ListenSetting{
				{Arg: "--web.listen-address", Value: "{host}:{port}"},
			},
		},
	}
}

func presetNames() []string {
	var names []string
	for _, p := range builtinPresets {
		names = append(names, p.Name)
	}
	return names
}

func findPreset(name string) *Preset {
	for _, p := range Presets() {
		if p.Name == name {
			return &p
		}
	}
	return nil
}

// imageName is the image reference without registry host, tag and digest.
func imageName(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	if i := strings.Index(image, "/"); i >= 0 && strings.ContainsAny(image[:i], ".:") {
		image = image[i+1:]
	}
	return image
}

// DetectPreset recognizes a container by its image name, then by env or args it already has:
// takeover mode moves it, check reports it running unprotected.
func DetectPreset(c *corev1.Container) *Preset {
	name := imageName(c.Image)
	for i := range builtinPresets {
		for _, img := range builtinPresets[i].Images {
			if strings.Contains(name, img) {
				return freshPreset(i)
			}
		}
	}
	for i := range builtinPresets {
		p := &builtinPresets[i]
		for _, e := range c.Env {
			for _, want := range p.Env {
				if e.Name == want {
					return freshPreset(i)
				}
			}
		}
		for _, args := range [][]string{c.Command, c.Args} {
			for _, a := range args {
				for _, want := range p.Args {
					if a == want || strings.HasPrefix(a, want) && strings.HasPrefix(a[len(want):], "=") {
						return freshPreset(i)
					}
				}
			}
		}
	}
	return nil
}

// builtinPresets is Presets() built once, read (never changed, never handed out) by
// DetectPreset so that a Pod no preset recognizes costs no allocation.
var builtinPresets = Presets()

// freshPreset returns the i-th preset from a fresh Presets(): the caller may keep or change it
// without touching builtinPresets.
func freshPreset(i int) *Preset {
	return &Presets()[i]
}

// parseUpstreamListen parses rbac-proxy.io/upstream-listen.
func parseUpstreamListen(v string, errs *problems) []ListenSetting {
	items, ok := splitList(v)
	if !ok {
		errs.add(AnnotationUpstreamListen, v, "empty item", AllowedOf(AnnotationUpstreamListen))
		return nil
	}
	var out []ListenSetting
	hasPort := false
	for _, item := range items {
		kind, rest, _ := strings.Cut(item, ":")
		name, value, ok := strings.Cut(rest, "=")
		if !ok || value == "" || !printableNoSpaceW(value) {
			errs.add(AnnotationUpstreamListen, v, "malformed item "+strconv.Quote(item), AllowedOf(AnnotationUpstreamListen))
			return nil
		}
		hasPort = hasPort || strings.Contains(value, "{port}")
		switch kind {
		case "env":
			if !isEnvName(name) {
				errs.add(AnnotationUpstreamListen, v, "bad environment variable name "+strconv.Quote(name), AllowedOf(AnnotationUpstreamListen))
				return nil
			}
			out = append(out, ListenSetting{Env: name, Value: value})
		case "arg":
			if !strings.HasPrefix(name, "-") || strings.ContainsAny(name, " =") || len(name) < 2 {
				errs.add(AnnotationUpstreamListen, v, "bad flag "+strconv.Quote(name), AllowedOf(AnnotationUpstreamListen))
				return nil
			}
			out = append(out, ListenSetting{Arg: name, Value: value})
		default:
			errs.add(AnnotationUpstreamListen, v, "unknown kind "+strconv.Quote(kind), AllowedOf(AnnotationUpstreamListen))
			return nil
		}
	}
	if !hasPort {
		errs.add(AnnotationUpstreamListen, v, "no item sets {port}", AllowedOf(AnnotationUpstreamListen))
		return nil
	}
	return out
}

func printableNoSpaceW(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
