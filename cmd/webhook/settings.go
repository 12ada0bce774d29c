package main

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rbac-proxy/rbac-proxy/webhook"
)

// setting is one leaf field of webhook.Config, with what its tags say of its views.
type setting struct {
	// key is the config-file key, dotted below a nested object: resources.cpuRequest.
	key  string
	flag string
	help string
	// chart is the chart value that is this setting; chartFrom names the values the chart builds
	// it from instead. One of them is set.
	chart, chartFrom string
	// enum, min, max and format are what values.schema.json allows.
	enum     []string
	min, max *int
	format   string
	// index locates the field in webhook.Config (reflect.Value.FieldByIndex).
	index []int
	typ   reflect.Type
}

// settings lists webhook.Config's leaf fields in declaration order; nested structs (resources)
// are walked into.
func settings() []setting {
	var out []setting
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			idx := append(append([]int{}, index...), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+key+".", idx)
				continue
			}
			s := setting{
				key: prefix + key, flag: f.Tag.Get("flag"), help: f.Tag.Get("help"),
				chart: f.Tag.Get("chart"), chartFrom: f.Tag.Get("chartFrom"),
				format: f.Tag.Get("format"), index: idx, typ: f.Type,
			}
			if e := f.Tag.Get("enum"); e != "" {
				s.enum = strings.Split(e, ",")
			}
			s.min, s.max = intTag(f, "min"), intTag(f, "max")
			out = append(out, s)
		}
	}
	walk(reflect.TypeFor[webhook.Config](), "", nil)
	return out
}

// intTag is the integer tag name of f; nil when absent. A tag that is no integer is a
// programming error that every test of the flags shows.
func intTag(f reflect.StructField, name string) *int {
	v, ok := f.Tag.Lookup(name)
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		panic(fmt.Sprintf("webhook.Config.%s: tag %s:%q is not an integer", f.Name, name, v))
	}
	return &n
}

// field is the setting's field in c.
func (s setting) field(c *webhook.Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(s.index)
}

// addSettingFlags registers a flag for every setting, bound to its field in c, whose value is
// the flag's default.
func addSettingFlags(fs *pflag.FlagSet, c *webhook.Config) {
	for _, s := range settings() {
		v := s.field(c)
		// A named string type (SidecarMode, PullPolicy) is bound through a *string: Go converts
		// pointers between types of the same underlying type.
		switch ptr := v.Addr(); {
		case v.Kind() == reflect.String:
			fs.StringVar(ptr.Convert(reflect.TypeFor[*string]()).Interface().(*string), s.flag, v.String(), s.help)
		case v.Kind() == reflect.Int32:
			fs.Int32Var(ptr.Interface().(*int32), s.flag, int32(v.Int()), s.help)
		case v.Kind() == reflect.Int:
			fs.IntVar(ptr.Interface().(*int), s.flag, int(v.Int()), s.help)
		case v.Type() == reflect.TypeFor[[]string]():
			fs.StringSliceVar(ptr.Interface().(*[]string), s.flag, v.Interface().([]string), s.help+" (comma-separated or repeated)")
		default:
			panic(fmt.Sprintf("webhook.Config %s: no flag for a %s", s.key, v.Type()))
		}
	}
}
