package virtualbox

// A fake VBoxManage for tests: the test binary, copied as VBoxManage into a directory on PATH,
// acts as the tool when run under that name. It keeps its VMs, host-only interfaces and DHCP
// servers in a JSON file, writes DHCP leases where VirtualBox does, appends every invocation to a
// transcript, accepts only the subcommands and options the driver is allowed to use (with the
// arities the VBoxManage manual gives), and answers with the real tool's error texts.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mkube/pkg/driver/drivertest/fakevm"
)

type fakeVM struct {
	State    string
	Settings map[string]string
	Media    map[string]string // "port/type" -> medium
	Extra    map[string]string // extradata
}

type fakeState struct {
	VMs     map[string]*fakeVM
	HostIfs []hostOnlyIf
	DHCP    map[string]bool
}

// fakeTool is the fake's tool: the test binary on PATH as VBoxManage, its state in $FAKE_VBOX_DIR.
var fakeTool = fakevm.Tool{Name: "VBoxManage", StateEnv: "FAKE_VBOX_DIR"}

func TestMain(m *testing.M) { fakeTool.Main(m, fakeVBoxManage) }

func loadFake() *fakeState {
	s := &fakeState{VMs: map[string]*fakeVM{}, DHCP: map[string]bool{}}
	fakeTool.Load(s)
	return s
}

func (s *fakeState) save() { fakeTool.Save(s) }

func syntaxError(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "VBoxManage: error: "+format+"\n", a...)
	return 2 // RTEXITCODE_SYNTAX
}

func failure(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "VBoxManage: error: "+format+"\n", a...)
	return 1
}

// parseOpts checks args against allowed options (name -> number of values) and returns them;
// options may repeat (--natpf1), so values are kept as a list per option.
func parseOpts(args []string, allowed map[string]int) (map[string][]string, int) {
	got := map[string][]string{}
	for i := 0; i < len(args); i++ {
		name, val, inline := strings.Cut(args[i], "=")
		n, ok := allowed[name]
		if !ok {
			return nil, syntaxError("Unknown option: %s", args[i])
		}
		switch {
		case inline && n == 1:
			got[name] = append(got[name], val)
		case n == 0:
			got[name] = append(got[name], "")
		default:
			if i+n > len(args)-1 {
				return nil, syntaxError("Missing argument to '%s'", name)
			}
			got[name] = append(got[name], strings.Join(args[i+1:i+1+n], " "))
			i += n
		}
	}
	return got, 0
}

func fakeVBoxManage(args []string) int {
	fakeTool.Record("VBoxManage " + strings.Join(args, " "))
	if len(args) == 0 {
		return syntaxError("No subcommand given")
	}
	s := loadFake()
	defer s.save()
	vm := func(name string) (*fakeVM, int) {
		v, ok := s.VMs[name]
		if !ok {
			return nil, failure("Could not find a registered machine named '%s'", name)
		}
		return v, 0
	}
	switch args[0] {
	case "--version":
		v := os.Getenv("FAKE_VBOX_VERSION")
		if v == "" {
			v = "7.0.14r161095"
		}
		fmt.Println(v)
	case "list":
		if len(args) != 2 {
			return syntaxError("Incorrect number of parameters")
		}
		switch args[1] {
		case "hostonlyifs":
			for _, h := range s.HostIfs {
				fmt.Printf("Name:            %s\nGUID:            786f6276-656e-4074-8000-0a0027000000\nDHCP:            Disabled\nIPAddress:       %s\nNetworkMask:     %s\nStatus:          Up\nVBoxNetworkName: HostInterfaceNetworking-%s\n\n", h.Name, h.IP, h.Mask, h.Name)
			}
		case "dhcpservers":
			for name := range s.DHCP {
				fmt.Printf("NetworkName:    HostInterfaceNetworking-%s\nDhcpd IP:       %s\nEnabled:        Yes\n\n", name, dhcpServerIP)
			}
		default:
			return syntaxError("Unknown subcommand: %s", args[1])
		}
	case "hostonlyif":
		if len(args) < 2 {
			return syntaxError("Incorrect number of parameters")
		}
		switch args[1] {
		case "create":
			name := fmt.Sprintf("vboxnet%d", len(s.HostIfs))
			s.HostIfs = append(s.HostIfs, hostOnlyIf{Name: name, IP: "0.0.0.0", Mask: "0.0.0.0"})
			fmt.Printf("0%%...10%%...20%%...30%%...40%%...50%%...60%%...70%%...80%%...90%%...100%%\nInterface '%s' was successfully created\n", name)
		case "ipconfig":
			if len(args) < 3 {
				return syntaxError("Incorrect number of parameters")
			}
			o, code := parseOpts(args[3:], map[string]int{"--ip": 1, "--netmask": 1})
			if code != 0 {
				return code
			}
			for i := range s.HostIfs {
				if s.HostIfs[i].Name == args[2] {
					s.HostIfs[i].IP, s.HostIfs[i].Mask = o["--ip"][0], o["--netmask"][0]
					return 0
				}
			}
			return failure("could not find interface '%s'", args[2])
		default:
			return syntaxError("Unknown subcommand: %s", args[1])
		}
	case "dhcpserver":
		if len(args) < 2 || args[1] != "add" {
			return syntaxError("Unknown subcommand")
		}
		o, code := parseOpts(args[2:], map[string]int{"--interface": 1, "--network": 1, "--server-ip": 1, "--netmask": 1, "--lower-ip": 1, "--upper-ip": 1, "--enable": 0, "--disable": 0})
		if code != 0 {
			return code
		}
		ifname := o["--interface"]
		if len(ifname) == 0 || len(o["--server-ip"]) == 0 || len(o["--lower-ip"]) == 0 || len(o["--upper-ip"]) == 0 {
			return syntaxError("You need to specify either --network or --interface, and the server IP and range")
		}
		if s.DHCP[ifname[0]] {
			return failure("DHCP server already exists")
		}
		s.DHCP[ifname[0]] = true
	case "createvm":
		o, code := parseOpts(args[1:], map[string]int{"--name": 1, "--ostype": 1, "--basefolder": 1, "--register": 0})
		if code != 0 {
			return code
		}
		name := o["--name"][0]
		file := filepath.Join(o["--basefolder"][0], name, name+".vbox")
		if _, exists := s.VMs[name]; exists {
			return failure("Machine settings file '%s' already exists", file)
		}
		os.MkdirAll(filepath.Dir(file), 0o755)
		os.WriteFile(file, []byte("<VirtualBox/>"), 0o644)
		s.VMs[name] = &fakeVM{State: "poweroff", Settings: map[string]string{"basefolder": o["--basefolder"][0], "cfgfile": file}, Media: map[string]string{}}
		fmt.Printf("Virtual machine '%s' is created and registered.\nSettings file: '%s'\n", name, file)
	case "modifyvm":
		if len(args) < 2 {
			return syntaxError("Not enough parameters")
		}
		v, code := vm(args[1])
		if code != 0 {
			return code
		}
		o, code := parseOpts(args[2:], map[string]int{"--cpus": 1, "--memory": 1, "--paravirtprovider": 1, "--acpi": 1, "--ioapic": 1,
			"--rtcuseutc": 1, "--boot1": 1, "--boot2": 1, "--boot3": 1, "--boot4": 1, "--nic1": 1, "--nictype1": 1, "--natpf1": 1,
			"--nic2": 1, "--hostonlyadapter2": 1, "--nictype2": 1, "--macaddress2": 1, "--uart1": 2, "--uartmode1": 2,
			"--usb": 1})
		if code != 0 {
			return code
		}
		for k, vals := range o {
			v.Settings[k] = vals[len(vals)-1]
		}
	case "storagectl":
		if len(args) < 2 {
			return syntaxError("Not enough parameters")
		}
		if _, code := vm(args[1]); code != 0 {
			return code
		}
		if _, code := parseOpts(args[2:], map[string]int{"--name": 1, "--add": 1, "--controller": 1, "--portcount": 1, "--hostiocache": 1}); code != 0 {
			return code
		}
	case "storageattach":
		if len(args) < 2 {
			return syntaxError("Not enough parameters")
		}
		v, code := vm(args[1])
		if code != 0 {
			return code
		}
		o, code := parseOpts(args[2:], map[string]int{"--storagectl": 1, "--port": 1, "--device": 1, "--type": 1, "--medium": 1})
		if code != 0 {
			return code
		}
		medium := o["--medium"][0]
		if _, err := os.Stat(medium); err != nil {
			return failure("Could not find file for the medium '%s' (VERR_FILE_NOT_FOUND)", medium)
		}
		v.Media[o["--port"][0]+"/"+o["--type"][0]] = medium
	case "createmedium":
		if len(args) < 2 || args[1] != "disk" {
			return syntaxError("Invalid parameter")
		}
		o, code := parseOpts(args[2:], map[string]int{"--filename": 1, "--size": 1, "--format": 1})
		if code != 0 {
			return code
		}
		file := o["--filename"][0]
		if _, err := os.Stat(file); err == nil {
			return failure("Failed to create medium\nVBoxManage: error: Could not create the medium storage unit '%s'.\nVBoxManage: error: VDI: cannot create image '%s' (VERR_ALREADY_EXISTS)", file, file)
		}
		os.WriteFile(file, nil, 0o644)
		fmt.Println("Medium created. UUID: 1f1e2d3c-0000-4000-8000-000000000000")
	case "startvm":
		if len(args) != 4 || args[2] != "--type" || args[3] != "headless" {
			return syntaxError("Invalid parameters to startvm")
		}
		v, code := vm(args[1])
		if code != 0 {
			return code
		}
		if os.Getenv("FAKE_VBOX_NO_VTX") != "" {
			return failure("VT-x is not available (VERR_VMX_NO_VMX)\nVBoxManage: error: Details: code NS_ERROR_FAILURE (0x80004005), component ConsoleWrap, interface IConsole")
		}
		if v.State == "running" {
			return failure("The machine '%s' is already locked by a session (or being locked or unlocked)", args[1])
		}
		v.State = "running"
		fakeLease(v)
		fmt.Printf("Waiting for VM \"%s\" to power on...\nVM \"%s\" has been successfully started.\n", args[1], args[1])
	case "showvminfo":
		if len(args) != 3 || args[2] != "--machinereadable" {
			return syntaxError("Invalid parameters to showvminfo")
		}
		v, code := vm(args[1])
		if code != 0 {
			return code
		}
		fmt.Printf("name=\"%s\"\nostype=\"Linux 2.6 / 3.x / 4.x / 5.x (64-bit)\"\nCfgFile=\"%s\"\nVMState=\"%s\"\n", args[1], v.Settings["cfgfile"], v.State)
		if h := v.Settings["--hostonlyadapter2"]; h != "" {
			fmt.Printf("hostonlyadapter2=\"%s\"\nmacaddress2=\"%s\"\n", h, v.Settings["--macaddress2"])
		}
		if pf := v.Settings["--natpf1"]; pf != "" {
			fmt.Printf("Forwarding(0)=\"%s\"\n", pf)
		}
	case "setextradata":
		// setextradata <vm> <key> [<value>]: without a value the key is removed.
		if len(args) != 3 && len(args) != 4 {
			return syntaxError("Incorrect number of parameters")
		}
		v, code := vm(args[1])
		if code != 0 {
			return code
		}
		if v.Extra == nil {
			v.Extra = map[string]string{}
		}
		if len(args) == 4 && args[3] != "" {
			v.Extra[args[2]] = args[3]
		} else {
			delete(v.Extra, args[2])
		}
	case "getextradata":
		if len(args) != 3 {
			return syntaxError("Incorrect number of parameters")
		}
		v, code := vm(args[1])
		if code != 0 {
			return code
		}
		if val, ok := v.Extra[args[2]]; ok {
			fmt.Printf("Value: %s\n", val)
		} else {
			fmt.Println("No value set!")
		}
	case "controlvm":
		if len(args) != 3 {
			return syntaxError("Incorrect number of parameters")
		}
		v, code := vm(args[1])
		if code != 0 {
			return code
		}
		if v.State != "running" {
			return failure("Machine '%s' is not currently running", args[1])
		}
		switch args[2] {
		case "acpipowerbutton":
			if os.Getenv("FAKE_VBOX_IGNORE_ACPI") == "" {
				v.State = "poweroff"
			}
		case "poweroff":
			v.State = "poweroff"
		default:
			return syntaxError("Invalid parameter '%s'", args[2])
		}
	case "unregistervm":
		if len(args) != 3 || args[2] != "--delete" {
			return syntaxError("Invalid parameters to unregistervm")
		}
		v, code := vm(args[1])
		if code != 0 {
			return code
		}
		if v.State == "running" {
			return failure("Cannot unregister the machine '%s' while it is locked", args[1])
		}
		if disk := v.Media["2/hdd"]; disk != "" {
			os.Remove(disk)
		}
		os.RemoveAll(filepath.Join(v.Settings["basefolder"], args[1]))
		delete(s.VMs, args[1])
	default:
		return syntaxError("Invalid command '%s'", args[0])
	}
	return 0
}

// fakeLease writes the DHCP lease VirtualBox's dhcpd would, for NIC 2: each MAC its own address
// from .100 up, kept across boots.
func fakeLease(v *fakeVM) {
	ifname := v.Settings["--hostonlyadapter2"]
	if ifname == "" {
		return
	}
	mac := colonMAC(v.Settings["--macaddress2"])
	file := filepath.Join(os.Getenv("VBOX_USER_HOME"), "HostInterfaceNetworking-"+ifname+"-Dhcpd.leases")
	old, _ := os.ReadFile(file)
	if strings.Contains(string(old), `mac="`+mac+`"`) {
		return
	}
	leases := strings.TrimSuffix(strings.TrimPrefix(string(old), "<?xml version=\"1.0\"?>\n<Leases version=\"1.0\">\n"), "</Leases>\n")
	leases += fmt.Sprintf(`  <Lease mac="%s" id="01%s" state="acked">
    <Address value="192.168.59.%d"/>
    <Time issued="1764180000" expiration="600"/>
  </Lease>
`, mac, strings.ReplaceAll(mac, ":", ""), 100+strings.Count(leases, "<Lease "))
	os.WriteFile(file, []byte("<?xml version=\"1.0\"?>\n<Leases version=\"1.0\">\n"+leases+"</Leases>\n"), 0o644)
}
