// Package redirect builds and installs the nftables rules of rbac-proxy.io/port-mode=redirect: in
// the Pod's network namespace, TCP connections to the protected port are redirected to the proxy's
// port, except those the proxy itself makes (its user ID), so it still reaches the app on
// 127.0.0.1:<protected port>.
//
// The rules are built as data (Build) and installed over netlink (Apply) in one batch that
// replaces the table rbac-proxy, so running it twice leaves the same rules. They read, in nft
// syntax (Ruleset.String):
//
//	table inet rbac-proxy {
//		chain prerouting {
//			type nat hook prerouting priority dstnat; policy accept;
//			meta l4proto tcp tcp dport 9400 redirect to :8443
//		}
//		chain output {
//			type nat hook output priority dstnat; policy accept;
//			meta l4proto tcp oifname "lo" meta skuid != 65532 tcp dport 9400 redirect to :8443
//		}
//	}
//
// prerouting catches connections from outside the Pod (other Pods, Services, the kubelet);
// output those from the Pod's other containers to its own addresses (they leave through lo).
package redirect

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the table the rules live in; Apply replaces it whole.
const TableName = "rbac-proxy"

// Config is what the init container is told.
type Config struct {
	// Port is the protected (app) port; To the proxy's port.
	Port, To uint16
	// ExcludeUID is the proxy's user ID: its connections are not redirected.
	ExcludeUID uint32
}

// Validate refuses a configuration that would redirect nothing or loop.
func (c Config) Validate() error {
	switch {
	case c.Port == 0:
		return errors.New("--port: the protected port is required (1-65535)")
	case c.To == 0:
		return errors.New("--to: the proxy's port is required (1-65535)")
	case c.Port == c.To:
		return fmt.Errorf("--port and --to are both %d: the proxy cannot listen on the port it takes traffic from", c.Port)
	}
	return nil
}

// Chain is one base chain of the table.
type Chain struct {
	Name string
	Hook *nftables.ChainHook
	// HookName is the hook in nft syntax.
	HookName string
}

// Rule is one rule: its chain, what it says in nft syntax, and its expressions.
type Rule struct {
	Chain string
	Text  string
	Exprs []expr.Any
}

// Ruleset is the whole table.
type Ruleset struct {
	Config Config
	Chains []Chain
	Rules  []Rule
}

// ifname is an interface name as the kernel compares it: IFNAMSIZ bytes, zero-padded.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Build returns the rules for c. It is pure: the kernel is only involved in Apply.
func Build(c Config) (*Ruleset, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tcp := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	dport := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(c.Port)},
	}
	redirect := []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(c.To)},
		&expr.Redir{RegisterProtoMin: 1},
	}
	notProxy := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
		&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(c.ExcludeUID)},
	}
	join := func(parts ...[]expr.Any) []expr.Any {
		var out []expr.Any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	return &Ruleset{
		Config: c,
		Chains: []Chain{
			{Name: "prerouting", Hook: nftables.ChainHookPrerouting, HookName: "prerouting"},
			{Name: "output", Hook: nftables.ChainHookOutput, HookName: "output"},
		},
		Rules: []Rule{
			{
				Chain: "prerouting",
				Text:  fmt.Sprintf("meta l4proto tcp tcp dport %d redirect to :%d", c.Port, c.To),
				Exprs: join(tcp, dport, redirect),
			},
			{
				Chain: "output",
				Text:  fmt.Sprintf("meta l4proto tcp oifname \"lo\" meta skuid != %d tcp dport %d redirect to :%d", c.ExcludeUID, c.Port, c.To),
				Exprs: join(tcp, notProxy, dport, redirect),
			},
		},
	}, nil
}

// String is the table in nft syntax.
func (r *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", TableName)
	for _, ch := range r.Chains {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype nat hook %s priority dstnat; policy accept;\n", ch.Name, ch.HookName)
		for _, ru := range r.Rules {
			if ru.Chain == ch.Name {
				fmt.Fprintf(&b, "\t\t%s\n", ru.Text)
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// Apply installs the rules in the network namespace of conn's options (the caller's by default):
// one netlink batch that creates the table if missing, deletes it with whatever it held, and
// creates it again with the rules, so the kernel applies all of it or nothing.
func Apply(r *Ruleset, opts ...nftables.ConnOption) error {
	conn, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("opening a netlink connection to nftables: %w", err)
	}
	defer conn.CloseLasting()
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	conn.AddTable(table)
	conn.DelTable(table)
	conn.AddTable(table)
	chains := map[string]*nftables.Chain{}
	for _, ch := range r.Chains {
		chains[ch.Name] = conn.AddChain(&nftables.Chain{
			Name:     ch.Name,
			Table:    table,
			Type:     nftables.ChainTypeNAT,
			Hooknum:  ch.Hook,
			Priority: nftables.ChainPriorityNATDest,
		})
	}
	for _, ru := range r.Rules {
		conn.AddRule(&nftables.Rule{Table: table, Chain: chains[ru.Chain], Exprs: ru.Exprs})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("installing the nftables table inet %s (the container needs NET_ADMIN, and the kernel nf_tables with nat and redirect): %w", TableName, err)
	}
	return nil
}

// Installed reads back the rules of the table: how many rules each chain holds. An error when the
// table or a chain is missing.
func Installed(opts ...nftables.ConnOption) (map[string]int, error) {
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, err
	}
	defer conn.CloseLasting()
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	out := map[string]int{}
	for _, name := range []string{"prerouting", "output"} {
		rules, err := conn.GetRules(table, &nftables.Chain{Name: name, Table: table})
		if err != nil {
			return nil, fmt.Errorf("reading chain %s of table inet %s: %w", name, TableName, err)
		}
		out[name] = len(rules)
	}
	return out, nil
}
