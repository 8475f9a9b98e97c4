package hyperv

// A fake Windows PowerShell for tests: the test binary, copied as "powershell" onto PATH, acts as
// PowerShell with the Hyper-V module when run under that name. It keeps VMs and disks as JSON in a
// temp dir, records every script in a transcript, understands only the cmdlets and parameters the
// driver may use (as the Hyper-V cmdlet reference defines them), and fails like PowerShell does:
// unknown cmdlets and parameters, missing files, VMs that do not exist or already do.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mkube/pkg/driver/drivertest/fakevm"
)

type fakeVM struct {
	IP       string // the address the guest reports once it runs: each VM its own
	State    string
	Path     string // the VM's folder, as Get-VM reports it
	Switch   string
	Notes    string
	Settings map[string]string
}

type fakeState struct{ VMs map[string]*fakeVM }

// fakeTool is the fake's tool: the test binary on PATH as powershell, its state in $FAKE_PS_DIR.
var fakeTool = fakevm.Tool{Name: "powershell", StateEnv: "FAKE_PS_DIR"}

func TestMain(m *testing.M) { fakeTool.Main(m, fakePowerShell) }

func loadFake() *fakeState {
	s := &fakeState{VMs: map[string]*fakeVM{}}
	fakeTool.Load(s)
	return s
}

func (s *fakeState) save() { fakeTool.Save(s) }

func psFail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	return 1
}

// cmdletParams are the parameters each cmdlet accepts (true: a switch, no value).
var cmdletParams = map[string]map[string]bool{
	"New-VM":              {"Name": false, "Path": false, "Generation": false, "MemoryStartupBytes": false, "SwitchName": false, "NoVHD": true},
	"Set-VMProcessor":     {"VMName": false, "Count": false},
	"Set-VMMemory":        {"VMName": false, "DynamicMemoryEnabled": false, "StartupBytes": false},
	"Set-VMDvdDrive":      {"VMName": false, "ControllerNumber": false, "ControllerLocation": false, "Path": false},
	"Add-VMDvdDrive":      {"VMName": false, "ControllerNumber": false, "ControllerLocation": false, "Path": false},
	"New-VHD":             {"Path": false, "SizeBytes": false, "Dynamic": true, "Fixed": true},
	"Add-VMHardDiskDrive": {"VMName": false, "ControllerNumber": false, "ControllerLocation": false, "Path": false},
	"Set-VMBios":          {"VMName": false, "StartupOrder": false},
	"Start-VM":            {"Name": false},
	"Stop-VM":             {"Name": false, "TurnOff": true, "Force": true},
	"Remove-VM":           {"Name": false, "Force": true},
	"Set-VM":              {"Name": false, "Notes": false},
}

// isQuote: PowerShell takes the typographic single quotes for ' too.
func isQuote(r rune) bool {
	return r == '\'' || r == '\u2018' || r == '\u2019' || r == '\u201a' || r == '\u201b'
}

// tokens splits a PowerShell command line: single-quoted strings (any of PowerShell's single
// quote characters opens or closes one; two in a row inside are one, kept as the second),
// @( ... ) arrays, and ; or a line break outside quotes, which end a statement and are kept as a
// token of their own so that a value that escaped its quotes shows.
func tokens(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, depth, quoted := false, 0, false
	flush := func() {
		if cur.Len() > 0 || quoted {
			out = append(out, cur.String())
			cur.Reset()
		}
		quoted = false
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case inQuote && isQuote(c) && i+1 < len(rs) && isQuote(rs[i+1]):
			cur.WriteRune(rs[i+1])
			i++
		case isQuote(c) && depth == 0:
			inQuote, quoted = !inQuote, true
		case !inQuote && c == '(':
			depth++
			cur.WriteRune(c)
		case !inQuote && c == ')':
			depth--
			cur.WriteRune(c)
		case !inQuote && depth == 0 && (c == ';' || c == '\n'):
			flush()
			out = append(out, string(c))
		case !inQuote && depth == 0 && c == ' ':
			flush()
		default:
			cur.WriteRune(c)
		}
	}
	flush()
	return out
}

func fakePowerShell(args []string) int {
	if len(args) != 4 || args[0] != "-NoProfile" || args[1] != "-NonInteractive" || args[2] != "-Command" {
		return psFail("fake powershell: unexpected arguments %q", args)
	}
	script := args[3]
	fakeTool.Record(script)
	s := loadFake()
	defer s.save()
	notFound := func(cmdlet, name string) int {
		return psFail("Hyper-V\\%s : Hyper-V was unable to find a virtual machine with name \"%s\".", cmdlet, name)
	}
	switch {
	case script == `@(Get-Module -ListAvailable Hyper-V).Count`:
		if os.Getenv("FAKE_PS_NO_HYPERV") != "" {
			fmt.Println("0")
		} else {
			fmt.Println("1")
		}
		return 0
	case strings.HasPrefix(script, `$p = [Security.Principal.WindowsPrincipal]`):
		fmt.Println(map[bool]string{true: "False", false: "True"}[os.Getenv("FAKE_PS_NOT_ADMIN") != ""])
		return 0
	case script == `Hyper-V\Get-VMSwitch | Select-Object -ExpandProperty Name`:
		for _, n := range strings.Split(envOr("FAKE_PS_SWITCHES", "Default Switch"), ",") {
			fmt.Println(n)
		}
		return 0
	case script == `Hyper-V\Get-VMSwitch -SwitchType External | Select-Object -First 1 -ExpandProperty Name`:
		fmt.Println(os.Getenv("FAKE_PS_EXTERNAL"))
		return 0
	case strings.HasPrefix(script, `$vm = Hyper-V\Get-VM -Name `) && strings.HasSuffix(script, vmScriptTail):
		t := tokens(strings.TrimSuffix(strings.TrimPrefix(script, `$vm = Hyper-V\Get-VM -Name `), vmScriptTail))
		if len(t) != 1 {
			return psFail("fake powershell: the VM name is not one literal: %q", t)
		}
		v, ok := s.VMs[t[0]]
		if !ok {
			return notFound("Get-VM", t[0])
		}
		raw, _ := json.Marshal(map[string]string{"State": v.State, "Path": v.Path, "Notes": v.Notes})
		fmt.Printf("%s\r\n", raw)
		return 0
	case strings.HasPrefix(script, `(( Hyper-V\Get-VM -Name `) && strings.HasSuffix(script, ` ).NetworkAdapters[0]).IPAddresses`):
		name := tokens(strings.TrimSuffix(strings.TrimPrefix(script, `(( Hyper-V\Get-VM -Name `), ` ).NetworkAdapters[0]).IPAddresses`))[0]
		v, ok := s.VMs[name]
		if !ok {
			return notFound("Get-VM", name)
		}
		if v.State == "Running" {
			fmt.Printf("%s\nfe80::215:5dff:fe00:101\n", cmp.Or(v.IP, "172.29.112.5"))
		}
		return 0
	}
	t := tokens(script)
	cmdlet, ok := strings.CutPrefix(t[0], `Hyper-V\`)
	params, known := cmdletParams[cmdlet]
	if !ok || !known {
		return psFail("%s : The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program.", t[0], t[0])
	}
	p := map[string]string{}
	for i := 1; i < len(t); i++ {
		name, isParam := strings.CutPrefix(t[i], "-")
		isSwitch, allowed := params[name]
		if !isParam || !allowed {
			return psFail("%s : A parameter cannot be found that matches parameter name '%s'.", cmdlet, strings.TrimPrefix(t[i], "-"))
		}
		if isSwitch {
			p[name] = "true"
			continue
		}
		if i+1 >= len(t) {
			return psFail("%s : Missing an argument for parameter '%s'.", cmdlet, name)
		}
		p[name] = t[i+1]
		i++
	}
	vmName := p["VMName"] + p["Name"]
	if cmdlet != "New-VM" && cmdlet != "New-VHD" {
		if _, ok := s.VMs[vmName]; !ok {
			return notFound(cmdlet, vmName)
		}
	}
	v := s.VMs[vmName]
	switch cmdlet {
	case "New-VM":
		if _, exists := s.VMs[vmName]; exists {
			return psFail("Hyper-V\\New-VM : Failed to create a new virtual machine.\nThe operation failed because a virtual machine named '%s' already exists.", vmName)
		}
		if p["Generation"] != "1" && p["Generation"] != "2" {
			return psFail("New-VM : Cannot validate argument on parameter 'Generation'.")
		}
		// New-VM -Path P keeps the VM's files in P\<name>, which Get-VM reports as its Path.
		s.VMs[vmName] = &fakeVM{IP: fmt.Sprintf("172.29.112.%d", 5+len(s.VMs)), State: "Off", Path: filepath.Join(p["Path"], vmName), Switch: p["SwitchName"], Settings: map[string]string{}}
	case "Set-VM":
		if notes, ok := p["Notes"]; ok {
			v.Notes = notes
		}
	case "Set-VMDvdDrive", "Add-VMDvdDrive", "Add-VMHardDiskDrive":
		if _, err := os.Stat(p["Path"]); err != nil {
			return psFail("Hyper-V\\%s : Failed to add device 'Virtual CD/DVD Disk'.\nThe system cannot find the file specified. (0x80070002)", cmdlet)
		}
		v.Settings[cmdlet+"/"+p["ControllerNumber"]+"/"+p["ControllerLocation"]] = p["Path"]
	case "New-VHD":
		if _, err := os.Stat(p["Path"]); err == nil {
			return psFail("Hyper-V\\New-VHD : Failed to create the virtual hard disk.\nThe file exists. (0x80070050)")
		}
		os.WriteFile(p["Path"], nil, 0o644)
	case "Set-VMProcessor", "Set-VMMemory", "Set-VMBios":
		for k, val := range p {
			v.Settings[cmdlet+"/"+k] = val
		}
	case "Start-VM":
		v.State = "Running"
	case "Stop-VM":
		if p["TurnOff"] == "" && os.Getenv("FAKE_PS_HANG_STOP") != "" {
			time.Sleep(time.Hour) // the guest ignores the shutdown request
		}
		v.State = "Off"
	case "Remove-VM":
		if v.State != "Off" {
			return psFail("Hyper-V\\Remove-VM : The operation cannot be performed while the virtual machine is in its current state.")
		}
		delete(s.VMs, vmName)
	}
	return 0
}

// vmScriptTail is the part of the driver's Get-VM script after the VM's name.
const vmScriptTail = ` -ErrorAction Stop; @{ State = [string]$vm.State; Path = [string]$vm.Path; Notes = [string]$vm.Notes } | ConvertTo-Json -Compress`

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
