package redirect

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func TestBuildRules(t *testing.T) {
	r, err := Build(Config{Port: 9400, To: 8443, ExcludeUID: 65532})
	if err != nil {
		t.Fatal(err)
	}
	want := `table inet rbac-proxy {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		meta l4proto tcp tcp dport 9400 redirect to :8443
	}
	chain output {
		type nat hook output priority dstnat; policy accept;
		meta l4proto tcp oifname "lo" meta skuid != 65532 tcp dport 9400 redirect to :8443
	}
}
`
	if got := r.String(); got != want {
		t.Errorf("rules:\n%s\nwant:\n%s", got, want)
	}

	port := []byte{0x24, 0xb8} // 9400, network order
	to := []byte{0x20, 0xfb}   // 8443
	uid := make([]byte, 4)
	binary.NativeEndian.PutUint32(uid, 65532)
	lo := make([]byte, unix.IFNAMSIZ)
	copy(lo, "lo")
	tcp := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	dport := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
	}
	redir := []expr.Any{&expr.Immediate{Register: 1, Data: to}, &expr.Redir{RegisterProtoMin: 1}}
	wantRules := []Rule{
		{Chain: "prerouting", Exprs: append(append(append([]expr.Any{}, tcp...), dport...), redir...)},
		{Chain: "output", Exprs: append(append(append(append([]expr.Any{}, tcp...), []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: lo},
			&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: uid},
		}...), dport...), redir...)},
	}
	if len(r.Rules) != len(wantRules) {
		t.Fatalf("%d rules, want %d", len(r.Rules), len(wantRules))
	}
	for i, w := range wantRules {
		if r.Rules[i].Chain != w.Chain || !reflect.DeepEqual(r.Rules[i].Exprs, w.Exprs) {
			t.Errorf("rule %d (%s): %#v\nwant %s: %#v", i, r.Rules[i].Text, r.Rules[i].Exprs, w.Chain, w.Exprs)
		}
	}
	if len(r.Chains) != 2 || r.Chains[0].Name != "prerouting" || r.Chains[1].Name != "output" ||
		*r.Chains[0].Hook != unix.NF_INET_PRE_ROUTING || *r.Chains[1].Hook != unix.NF_INET_LOCAL_OUT {
		t.Errorf("chains: %+v", r.Chains)
	}
}

func TestBuildRefuses(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{To: 8443}, "--port"},
		{Config{Port: 9400}, "--to"},
		{Config{Port: 9400, To: 9400}, "both 9400"},
	} {
		if _, err := Build(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Build(%+v) = %v, want an error about %s", c.cfg, err, c.want)
		}
	}
}
