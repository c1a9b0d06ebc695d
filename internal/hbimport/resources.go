package hbimport

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/config"
)

// resourceOut is one haresources resource and what became of it.
type resourceOut struct {
	spec ResourceSpec
	// res is the translation; nil when there is none (the reason is in findings).
	res *config.Resource
	// todos are comments written under the resource: what the operator must fill
	// in before the file validates.
	todos []string
	// note is a short comment written next to the resource's name.
	note string
	// placeholder names the entry written for a resource without translation:
	// its type is a TODO, so that the file cannot be used until it is replaced.
	placeholder string
}

// wrapper is one of Heartbeat's /etc/ha.d/resource.d scripts that only turn
// their ::arguments into OCF_RESKEY_ variables and run the OCF agent of the same
// name. The argument mappings are those of Debian's heartbeat 3.0.6 scripts.
type wrapper struct {
	min, max int // argument counts; max < 0: any number
	usage    string
	params   func(args []string) map[string]string
}

func positional(names ...string) func([]string) map[string]string {
	return func(args []string) map[string]string {
		p := map[string]string{}
		for i, a := range args {
			if i < len(names) {
				p[names[i]] = a
			}
		}
		return p
	}
}

var wrappers = map[string]wrapper{
	"AudibleAlarm": {0, -1, "AudibleAlarm[::NODE...]", func(a []string) map[string]string {
		if len(a) == 0 {
			return nil
		}
		return map[string]string{"nodelist": strings.Join(a, " ")}
	}},
	"Delay": {0, 2, "Delay[::STARTDELAY[::STOPDELAY]]", func(a []string) map[string]string {
		p := positional("startdelay", "stopdelay")(a)
		if p["startdelay"] == "" {
			p["startdelay"] = "10" // the wrapper's default, not the agent's
		}
		return p
	}},
	"ICP":       {2, 2, "ICP::DRIVEID::DEVICE", positional("driveid", "device")},
	"IPsrcaddr": {1, 1, "IPsrcaddr::ADDRESS", positional("ipaddress")},
	"LVM":       {1, 1, "LVM::VOLUMEGROUP", positional("volgrpname")},
	"LinuxSCSI": {1, 1, "LinuxSCSI::HOST:CHANNEL:TARGET[:LUN]", positional("scsi")},
	"MailTo":    {1, 2, "MailTo::EMAIL[::SUBJECT]", positional("email", "subject")},
	"Raid1":     {2, 2, "Raid1::RAIDCONF::RAIDDEV", positional("raidconf", "raiddev")},
	"SendArp": {1, 1, "SendArp::ADDRESS/INTERFACE", func(a []string) map[string]string {
		ip, nic, _ := strings.Cut(a[0], "/")
		return map[string]string{"ip": ip, "nic": nic}
	}},
	"ServeRAID": {2, 2, "ServeRAID::ADAPTER::MERGEGROUP", positional("serveraid", "mergegroup")},
	"WAS": {0, 1, "WAS[::CONFIGFILE|PORT]", func(a []string) map[string]string {
		if len(a) == 0 {
			return nil
		}
		if _, err := strconv.Atoi(a[0]); err == nil {
			return map[string]string{"port": a[0]}
		}
		return map[string]string{"config": a[0]}
	}},
	"WinPopup": {0, 1, "WinPopup[::HOSTFILE]", func(a []string) map[string]string {
		if len(a) == 0 {
			return map[string]string{"hostfile": "hosts"} // the wrapper's default
		}
		return map[string]string{"hostfile": a[0]}
	}},
	"Xinetd": {1, 1, "Xinetd::SERVICE", positional("service")},
	"apache": {0, 1, "apache[::CONFIGFILE]", positional("configfile")},
	"db2":    {1, 1, "db2::INSTANCE", positional("instance")},
}

// translateResource maps one haresources resource. It returns the findings to
// report, located at the resource's line.
func (t *translator) translateResource(s ResourceSpec) resourceOut {
	out := resourceOut{spec: s}
	switch s.Name {
	case "IPaddr", "IPaddr2", "IPv6addr":
		t.translateIP(&out)
	case "Filesystem":
		t.translateFilesystem(&out)
	case "drbddisk":
		t.translateDRBD(&out)
	case "OCF":
		t.untranslated(s, "the agent's parameters are in a file under /etc/ha.d/conf/OCF/: write it as an ocf resource "+
			"(agent: heartbeat/TYPE, params: that file's variables without the OCF_RESKEY_ prefix)")
	default:
		if w, ok := wrappers[s.Name]; ok {
			if len(s.Args) < w.min || (w.max >= 0 && len(s.Args) > w.max) {
				t.untranslated(s, fmt.Sprintf("%d argument(s); Heartbeat's wrapper takes %s", len(s.Args), w.usage))
				return out
			}
			out.res = &config.Resource{Type: "ocf", Agent: "heartbeat/" + s.Name, Params: nonEmpty(w.params(s.Args))}
			out.note = "Heartbeat's resource.d/" + s.Name + " ran this OCF agent"
			return out
		}
		if len(s.Args) > 0 {
			t.untranslated(s, "Heartbeat passed arguments to this script (SCRIPT ARG... start); vigil's lsb resources call "+
				"SCRIPT start|stop|status without arguments: wrap it in a script that takes none, or use a process or ocf resource")
			return out
		}
		if s.Name == "" || strings.ContainsAny(s.Name, "\x00") {
			t.untranslated(s, "not a script name")
			return out
		}
		out.res = &config.Resource{Type: "lsb", Script: s.Name}
		out.note = "init script; Heartbeat looked in /etc/ha.d/resource.d first, then /etc/init.d"
	}
	return out
}

// translateDRBD turns drbddisk::RES, which made RES primary where the group
// ran and secondary when it stopped, into its successor: a promotable
// ocf:linbit:drbd resource (drbd-utils), promoted where the group runs and
// kept as an unpromoted (secondary) copy on the group's other nodes.
func (t *translator) translateDRBD(out *resourceOut) {
	s := out.spec
	if len(s.Args) != 1 || s.Args[0] == "" || s.Args[0] == "all" {
		t.untranslated(s, "drbddisk without one resource name acted on every DRBD resource; ocf:linbit:drbd manages one: "+
			"write one promotable ocf resource per DRBD resource (agent: linbit/drbd, promotable: true, params: {drbd_resource: NAME})")
		return
	}
	out.res = &config.Resource{Type: "ocf", Agent: "linbit/drbd", Promotable: true, Params: map[string]string{"drbd_resource": s.Args[0]}}
	out.note = "drbddisk made it primary here; ocf:linbit:drbd (drbd-utils) is its promotable successor"
	out.todos = append(out.todos,
		"the agent brings "+s.Args[0]+" up itself on every node of the group (secondary where the group does not run): "+
			"disable DRBD's own start at boot (systemctl disable drbd) and install drbd-utils on each node")
	t.changed(s, fmt.Sprintf("DRBD resource %s becomes a promotable ocf:linbit:drbd resource: vigil keeps it up as secondary on "+
		"the other node too, where drbddisk left that to DRBD's init script; disable that script", s.Args[0]))
}

func nonEmpty(m map[string]string) map[string]string {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// translateIP follows the argument parsing of Heartbeat's IPaddr and IPaddr2
// wrappers: ADDRESS[/NETMASK[/INTERFACE[:LABEL]][/BROADCAST]], where a third
// field starting with a digit is the broadcast address. IPv6addr is
// ADDRESS[/PREFIX[/INTERFACE]]; its address contains "::", which haresources
// splits, so its arguments are joined again first.
func (t *translator) translateIP(out *resourceOut) {
	s := out.spec
	var arg string
	switch {
	case s.Name != "IPaddr" && len(s.Args) > 0:
		arg = strings.Join(s.Args, "::")
	case len(s.Args) == 1:
		arg = s.Args[0]
	default:
		t.untranslated(s, fmt.Sprintf("%d arguments; Heartbeat's %s takes one: ADDRESS[/NETMASK[/INTERFACE][/BROADCAST]]", len(s.Args), s.Name))
		return
	}
	fields := strings.Split(arg, "/")
	addr, err := netip.ParseAddr(fields[0])
	want := map[string]string{"IPaddr": "an IPv4 address", "IPaddr2": "an IP address", "IPv6addr": "an IPv6 address"}[s.Name]
	if err != nil || addr.Zone() != "" || addr.Is4In6() || (s.Name == "IPaddr" && !addr.Is4()) || (s.Name == "IPv6addr" && !addr.Is6()) {
		t.untranslated(s, fmt.Sprintf("%q is not %s", fields[0], want))
		return
	}
	var mask, nic, bcast string
	if len(fields) > 1 {
		mask = fields[1]
	}
	if len(fields) > 2 {
		if f := fields[2]; f != "" && f[0] >= '0' && f[0] <= '9' && addr.Is4() {
			bcast = f
		} else {
			nic = f
			if len(fields) > 3 {
				bcast = fields[3]
			}
		}
	}
	r := &config.Resource{Type: "ip", Address: addr.String()}
	out.res = r
	if mask == "" {
		t.untranslated(s, fmt.Sprintf("no netmask: Heartbeat took it from the route to %s; vigil needs the prefix length (the TODO in vigil.yaml)", addr))
		out.todos = append(out.todos, fmt.Sprintf("TODO address: add the prefix length, e.g. %s/24 (Heartbeat took the netmask from the route)", addr))
	} else if bits, ok := prefixBits(mask, addr.BitLen()); ok {
		r.Address = netip.PrefixFrom(addr, bits).String()
	} else {
		t.untranslated(s, fmt.Sprintf("netmask %q is neither a prefix length nor a contiguous dotted mask", mask))
		out.todos = append(out.todos, fmt.Sprintf("TODO address: netmask %q was not understood; give %s/PREFIX", mask, addr))
	}
	if base, label, ok := strings.Cut(nic, ":"); ok {
		nic = base
		t.changed(s, fmt.Sprintf("alias label :%s dropped: vigil adds the address to %s itself", label, base))
	}
	if nic == "" {
		t.untranslated(s, fmt.Sprintf("no interface: Heartbeat used the one routing to %s; vigil needs it (the TODO in vigil.yaml)", addr))
		out.todos = append(out.todos, fmt.Sprintf("TODO interface: the interface for %s, e.g. eth0 (Heartbeat used the one routing to it)", addr))
	}
	r.Interface = nic
	if bcast != "" {
		if p, err := netip.ParsePrefix(r.Address); err != nil || bcast != broadcastOf(p) {
			t.changed(s, fmt.Sprintf("broadcast %s not carried over: vigil gives the address the standard broadcast of its prefix", bcast))
		}
	}
}

// prefixBits reads a netmask as Heartbeat's agents did: a prefix length, or
// for IPv4 a dotted mask such as 255.255.255.0.
func prefixBits(mask string, bitLen int) (int, bool) {
	if n, err := strconv.Atoi(mask); err == nil {
		return n, n >= 0 && n <= bitLen
	}
	m, err := netip.ParseAddr(mask)
	if err != nil || !m.Is4() || bitLen != 32 {
		return 0, false
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for v&(1<<31) != 0 {
		ones++
		v <<= 1
	}
	return ones, v == 0
}

func broadcastOf(p netip.Prefix) string {
	if !p.Addr().Is4() || p.Bits() >= 31 {
		return ""
	}
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// translateFilesystem follows Heartbeat's Filesystem wrapper:
// DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]], with -LLABEL and -UUUID devices.
func (t *translator) translateFilesystem(out *resourceOut) {
	s := out.spec
	if len(s.Args) < 2 || len(s.Args) > 4 {
		t.untranslated(s, fmt.Sprintf("%d argument(s); Heartbeat's Filesystem takes DEVICE::DIRECTORY[::FSTYPE[::OPTIONS]]", len(s.Args)))
		return
	}
	dev := s.Args[0]
	switch {
	case strings.HasPrefix(dev, "-L"):
		dev = "LABEL=" + dev[2:]
	case strings.HasPrefix(dev, "-U"):
		dev = "UUID=" + dev[2:]
	}
	r := &config.Resource{Type: "mount", Device: dev, Path: s.Args[1]}
	if len(s.Args) > 2 {
		r.FSType = s.Args[2]
	}
	if len(s.Args) > 3 {
		r.Options = s.Args[3]
	}
	out.res = r
	if r.FSType == "" {
		t.untranslated(s, "no file system type: the Filesystem agent detected it; vigil needs it (the TODO in vigil.yaml)")
		out.todos = append(out.todos, "TODO fstype: the file system type of "+dev+", e.g. ext4")
	}
}
