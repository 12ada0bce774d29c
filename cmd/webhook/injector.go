package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/check"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

const (
	injectorAuto = "auto"
	injectorNone = "none"
)

// injectorOption is --injector of the commands that judge a live cluster by the settings the
// injector runs with (check, scrape-config).
type injectorOption struct {
	value string
}

func (o *injectorOption) addFlag(fs *pflag.FlagSet) {
	fs.StringVar(&o.value, "injector", injectorAuto, "the injector Deployment whose serve arguments are the settings: auto (the one its webhook configuration leads to), NAMESPACE/NAME, or none (the flags and built-in defaults alone); settings flags given on the command line win")
}

// check validates --injector.
func (o *injectorOption) check() error {
	if o.value == injectorAuto || o.value == injectorNone {
		return nil
	}
	if _, err := o.deployment(); err != nil {
		return field.Invalid(field.NewPath("--injector"), o.value, err.Error())
	}
	return nil
}

// deployment is the NAMESPACE/NAME of --injector.
func (o *injectorOption) deployment() (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(o.value, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return types.NamespacedName{}, fmt.Errorf("allowed: %s, %s or NAMESPACE/NAME of a Deployment", injectorAuto, injectorNone)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// load is the settings to judge with: the injector Deployment's serve arguments, under the
// --config file and the settings flags given on the command line, and where they come from.
// Without a Deployment (none, or auto finding none it may trust) they are the flags and the
// built-in defaults, and Settings says why. An error is a Deployment named that cannot be read,
// or a Deployment whose arguments do not parse.
func (o *injectorOption) load(ctx context.Context, c client.Reader, defaults *defaultsOptions, fs *pflag.FlagSet) (*inject.Defaults, check.Settings, error) {
	fromFlags := func(reason string) (*inject.Defaults, check.Settings, error) {
		d, err := defaults.load(fs)
		return d, check.Settings{Source: check.SettingsFromFlags, Reason: reason}, err
	}
	var dep *appsv1.Deployment
	var how string
	switch o.value {
	case injectorNone:
		return fromFlags("--injector=" + injectorNone)
	case injectorAuto:
		in, err := check.ReadInjector(ctx, c)
		if err != nil {
			return nil, check.Settings{}, err
		}
		if dep, how = check.ChooseInjector(in); dep == nil {
			return fromFlags(how)
		}
	default:
		ref, err := o.deployment()
		if err != nil {
			return nil, check.Settings{}, err
		}
		dep = &appsv1.Deployment{}
		if err := c.Get(ctx, ref, dep); apierrors.IsNotFound(err) {
			return nil, check.Settings{}, fmt.Errorf("--injector=%s: deployment not found", o.value)
		} else if err != nil {
			return nil, check.Settings{}, fmt.Errorf("--injector=%s: %w", o.value, err)
		}
	}
	base, err := deploymentSettings(dep)
	if err != nil {
		return nil, check.Settings{}, err
	}
	d, err := defaults.loadOver(fs, base)
	return d, check.Settings{Source: check.SettingsFromDeployment(dep.Namespace, dep.Name), Reason: how}, err
}

// deploymentSettings parses the serve arguments of the injector's Deployment with serve's own
// flags: the settings it runs with.
func deploymentSettings(dep *appsv1.Deployment) (*webhook.Config, error) {
	args, container, ok := check.ServeArgs(dep)
	name := "Deployment " + dep.Namespace + "/" + dep.Name
	if !ok {
		return nil, fmt.Errorf("%s has no container that runs rbac-proxy-injector %s", name, "serve")
	}
	o := &serveOptions{}
	fs := newServeFlags(o)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%s, container %s: its serve arguments: %w", name, container, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s, container %s: its serve arguments: unexpected arguments %q", name, container, fs.Args())
	}
	if o.defaults.configFile != "" {
		return nil, fmt.Errorf("%s, container %s: its settings are in --config=%s, a file of its container: pass the same file with --config and --injector=%s", name, container, o.defaults.configFile, injectorNone)
	}
	if _, err := o.defaults.load(fs); err != nil {
		return nil, fmt.Errorf("%s, container %s: its serve arguments: %w", name, container, err)
	}
	return &o.defaults.config, nil
}
