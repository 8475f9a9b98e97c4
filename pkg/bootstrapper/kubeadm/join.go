package kubeadm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mkube/pkg/driver"
	"mkube/pkg/node"
)

// Paths inside a joining node.
const (
	joinConfigPath = node.StateDir + "/kubeadm-join.yaml"
	discoveryPath  = node.StateDir + "/kubeadm-discovery.conf"
	joinMarker     = node.StateDir + "/kubeadm-join-done"
	patchDir       = node.StateDir + "/kubeadm-patches"
	kubeletConf    = "/etc/kubernetes/kubelet.conf"
)

//go:embed join.yaml.tmpl
var joinTemplateText string

var joinTemplate = template.Must(template.New("join").Funcs(template.FuncMap{"quote": quote}).Parse(joinTemplateText))

// JoinToken is what a node needs to join: a bootstrap token for its kubelet's TLS bootstrap, and
// the cluster's CA, by which it trusts the API server. kubeadm takes the CA from a discovery file
// mkube writes into the node (file discovery) rather than pinning it by hash against the
// cluster-info ConfigMap (token discovery): that waits for the controller manager to sign
// cluster-info with the new token, which kubeadm checks every 5 seconds.
type JoinToken struct {
	Token string
	CA    []byte // PEM
}

// GenerateJoinConfig renders the JoinConfiguration of the node p describes (NodeName, NodeIP,
// the control plane's APIServerPort, the kubelet's --extra-config).
func GenerateJoinConfig(p Params, t JoinToken) ([]byte, error) {
	extra, err := ParseExtraConfig(p.ExtraConfig)
	if err != nil {
		return nil, err
	}
	data := struct {
		Params
		JoinToken
		DiscoveryPath, PatchDir string
		KubeletArgs             []Arg
	}{Params: p, JoinToken: t, DiscoveryPath: discoveryPath, PatchDir: patchDir, KubeletArgs: extra["kubelet"]}
	var buf bytes.Buffer
	if err := joinTemplate.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DiscoveryConfig is the kubeconfig kubeadm's file discovery reads on a joining node: the API
// server by the name every node reaches it under, and the cluster's CA. It holds no credentials.
func DiscoveryConfig(p Params, t JoinToken) ([]byte, error) {
	if len(t.CA) == 0 {
		return nil, errors.New("the join has no CA")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://%s:%d", ControlPlaneHost, p.APIServerPort), CertificateAuthorityData: t.CA}
	// kubeadm reads cluster-info with it as an anonymous user (kubeadm's RBAC allows that); the
	// kubelet's TLS bootstrap authenticates with the join's token.
	cfg.AuthInfos["anonymous"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["kubernetes"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: "anonymous"}
	cfg.CurrentContext = "kubernetes"
	return clientcmd.Write(*cfg)
}

// kubeletPatch is the strategic merge patch kubeadm applies to the cluster's kubelet configuration
// on this node: its own cgroup root where the node shares the host's cgroup v1 hierarchy.
func kubeletPatch(p Params) []byte {
	if p.CgroupRoot == "" {
		return []byte("{}\n")
	}
	return []byte("cgroupRoot: " + quote(p.CgroupRoot) + "\n")
}

// Join brings a node into the cluster as a worker with kubeadm join, the first time; after that the
// kubelet, enabled in the node, is only made sure to run. As Provision, every step checks what is
// already in place, so running it again resumes.
func (b *Bootstrapper) Join(ctx context.Context, r driver.Runner, c Cluster, t JoinToken) error {
	return b.provision(ctx, r, c, b.recoverJoin, func(ctx context.Context, r driver.Runner, c Cluster) error {
		return b.join(ctx, r, c, t)
	})
}

// PrepareJoin is the part of Join that needs no control plane yet (containerd, recovery, images,
// binaries): a start runs it on the workers while the primary's control plane comes up, then
// JoinPrepared.
func (b *Bootstrapper) PrepareJoin(ctx context.Context, r driver.Runner, c Cluster) error {
	return b.provision(ctx, r, c, b.recoverJoin, nil)
}

// JoinPrepared is the rest of Join, after PrepareJoin.
func (b *Bootstrapper) JoinPrepared(ctx context.Context, r driver.Runner, c Cluster, t JoinToken) error {
	return b.join(ctx, r, c, t)
}

// Joined says whether the node finished a kubeadm join.
func Joined(ctx context.Context, r driver.Runner) bool {
	_, err := node.Output(ctx, r, "test", "-f", joinMarker)
	return err == nil
}

func (b *Bootstrapper) join(ctx context.Context, r driver.Runner, c Cluster, t JoinToken) error {
	if Joined(ctx, r) {
		return node.StartKubelet(ctx, r)
	}
	cfg, err := GenerateJoinConfig(c.Params, t)
	if err != nil {
		return err
	}
	if err := node.WriteBytes(ctx, r, patchDir+"/kubeletconfiguration+merge.yaml", 0o644, kubeletPatch(c.Params)); err != nil {
		return err
	}
	discovery, err := DiscoveryConfig(c.Params, t)
	if err != nil {
		return err
	}
	if err := node.WriteBytes(ctx, r, discoveryPath, 0o644, discovery); err != nil {
		return err
	}
	if err := node.WriteBytes(ctx, r, joinConfigPath, 0o600, cfg); err != nil { // it holds the token
		return err
	}
	defer killKubeadmIfCancelled(ctx, r)
	if _, err := node.Output(ctx, r, "kubeadm", "join", "--config", joinConfigPath); err != nil {
		var exit *driver.ExitError
		if errors.As(err, &exit) {
			if why := initFailure(exit.Stderr); why != "" {
				return fmt.Errorf("kubeadm join: %s\n%w", why, err)
			}
		}
		return err
	}
	// The token expires within minutes, but it need not stay on the node.
	if _, err := node.Output(ctx, r, "rm", "-f", joinConfigPath, discoveryPath); err != nil {
		return err
	}
	_, err = node.Output(ctx, r, "touch", joinMarker)
	return err
}

// recoverJoin undoes a join that an interrupted start left half done (a kubelet configured, no
// marker), so the next join starts clean. The Node object such a join registered is the caller's
// to delete (DeleteNode): kubeadm refuses to join a name that a Ready node already has.
func (b *Bootstrapper) recoverJoin(ctx context.Context, r driver.Runner, _ Cluster) error {
	if Joined(ctx, r) {
		return nil
	}
	if err := killKubeadm(ctx, r); err != nil {
		return err
	}
	if _, err := node.Output(ctx, r, "test", "-f", kubeletConf); err != nil {
		return nil
	}
	return reset(ctx, r)
}

// Leave undoes a node's join with kubeadm reset before the node is removed: on a control plane
// this removes its etcd member from the cluster (kubeadm asks the cluster through the node's
// admin.conf), and its API server and etcd stop.
// The join marker goes first: a delete cut short leaves a node that a start joins again.
func Leave(ctx context.Context, r driver.Runner) error {
	if _, err := node.Output(ctx, r, "rm", "-f", joinMarker); err != nil {
		return err
	}
	return reset(ctx, r)
}

// tokenTTL is how long a join token lives: a join takes seconds, minutes under emulation.
const tokenTTL = 15 * time.Minute

// NewJoinToken makes a short-lived bootstrap token in the cluster (the Secret `kubeadm token
// create` would make) and hands the CA at caFile (the host's copy) to the join.
func NewJoinToken(ctx context.Context, client kubernetes.Interface, caFile string, now time.Time) (JoinToken, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return JoinToken{}, err
	}
	if block, _ := pem.Decode(ca); block == nil || block.Type != "CERTIFICATE" {
		return JoinToken{}, fmt.Errorf("%s holds no PEM certificate", caFile)
	} else if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return JoinToken{}, fmt.Errorf("%s: %w", caFile, err)
	}
	id, err := randomToken(6)
	if err != nil {
		return JoinToken{}, err
	}
	secret, err := randomToken(16)
	if err != nil {
		return JoinToken{}, err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"description":                    "mkube: a node joins",
			"token-id":                       id,
			"token-secret":                   secret,
			"expiration":                     now.Add(tokenTTL).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"auth-extra-groups":              "system:bootstrappers:kubeadm:default-node-token",
		},
	}
	if _, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{FieldManager: "mkube"}); err != nil {
		return JoinToken{}, fmt.Errorf("creating a join token: %w", err)
	}
	return JoinToken{Token: id + "." + secret, CA: ca}, nil
}

// DeleteNode removes a Node object (gone already is fine).
func DeleteNode(ctx context.Context, client kubernetes.Interface, name string) error {
	err := client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// randomToken is n characters of [a-z0-9], as bootstrap tokens are made of.
func randomToken(n int) (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var s strings.Builder
	b := make([]byte, 1)
	for s.Len() < n {
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		if int(b[0]) >= 256/len(alphabet)*len(alphabet) {
			continue // no modulo bias: every character equally likely
		}
		s.WriteByte(alphabet[int(b[0])%len(alphabet)])
	}
	return s.String(), nil
}
