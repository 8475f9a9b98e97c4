package ssh

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"uname", "-a"}, "uname -a"},
		{[]string{"sh", "-c", "exit 3"}, "sh -c 'exit 3'"},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"echo", ""}, "echo ''"},
		{[]string{"a;b", "$(x)"}, "'a;b' '$(x)'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestEnsureKey(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := EnsureKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(priv); st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(priv)
	if _, err := gossh.ParsePrivateKey(raw); err != nil {
		t.Errorf("private key unreadable: %v", err)
	}
	if _, _, _, _, err := gossh.ParseAuthorizedKey([]byte(pub)); err != nil || !strings.HasPrefix(pub, "ssh-ed25519 ") {
		t.Errorf("public key %q: %v", pub, err)
	}
	_, again, _ := EnsureKey(dir)
	if again != pub {
		t.Error("EnsureKey replaced an existing key")
	}
	if _, err := os.Stat(filepath.Join(dir, "id_ed25519.pub")); err != nil {
		t.Error(err)
	}
}

func TestCommandLine(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"sudo ls /etc | head"}, "sudo ls /etc | head"},
		{[]string{"sh", "-c", "exit 3"}, "sh -c 'exit 3'"},
		{[]string{"uname", "-a"}, "uname -a"},
	} {
		if got := commandLine(tt.args); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.args, got, tt.want)
		}
	}
}
