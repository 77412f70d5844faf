package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// runtime owns every pod bound to this node.
type runtime struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	cfg      config
	pgBinDir string
	uid, gid int

	mu     sync.Mutex
	pods   map[types.UID]*podRuntime
	nextIP int
}

func newRuntime(client kubernetes.Interface, recorder record.EventRecorder, cfg config, pgBinDir string) *runtime {
	uid, gid := 0, 0
	if account, err := user.Lookup("postgres"); err == nil {
		uid, _ = strconv.Atoi(account.Uid)
		gid, _ = strconv.Atoi(account.Gid)
	}
	return &runtime{client: client, recorder: recorder, cfg: cfg, pgBinDir: pgBinDir, uid: uid, gid: gid,
		pods: map[types.UID]*podRuntime{}, nextIP: 2}
}

// findPostgres returns the directory of the PostgreSQL server binaries the pods run.
func findPostgres(explicit string) (string, error) {
	candidates := []string{explicit}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(debian)))
	candidates = append(candidates, debian...)
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "psql")); err == nil {
				return dir, nil
			}
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb and psql) found: install postgresql or pass --postgres-bin")
}

func (r *runtime) watchPods(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(r.client, 0,
		informers.WithTweakListOptions(func(options *metav1.ListOptions) {
			options.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", r.cfg.nodeName).String()
		}))
	informer := factory.Core().V1().Pods().Informer()
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.observe(ctx, obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { r.observe(ctx, obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				r.forget(pod.UID)
			}
		},
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
}

// observe starts a new pod or begins the termination of a deleted one.
func (r *runtime) observe(ctx context.Context, pod *corev1.Pod) {
	r.mu.Lock()
	existing := r.pods[pod.UID]
	if existing == nil {
		if pod.DeletionTimestamp != nil && pod.Status.Phase == "" {
			r.mu.Unlock()
			r.deletePodObject(pod)
			return
		}
		existing = r.newPod(pod)
		r.pods[pod.UID] = existing
		r.mu.Unlock()
		go existing.run(ctx)
		return
	}
	r.mu.Unlock()
	existing.update(pod)
}

// forget stops a pod that vanished from the API without passing through graceful deletion.
func (r *runtime) forget(uid types.UID) {
	r.mu.Lock()
	pod := r.pods[uid]
	r.mu.Unlock()
	if pod != nil {
		pod.requestStop(0, false)
	}
}

func (r *runtime) find(namespace, name string) *podRuntime {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pod := range r.pods {
		if pod.namespace == namespace && pod.name == name && !pod.isStopping() {
			return pod
		}
	}
	return nil
}

func (r *runtime) stopAll() {
	r.mu.Lock()
	pods := make([]*podRuntime, 0, len(r.pods))
	for _, pod := range r.pods {
		pods = append(pods, pod)
	}
	r.mu.Unlock()
	for _, pod := range pods {
		pod.requestStop(10, false)
	}
	for _, pod := range pods {
		<-pod.done
	}
}

func (r *runtime) newPod(pod *corev1.Pod) *podRuntime {
	ip := fmt.Sprintf("10.244.%d.%d", r.nextIP/250, 2+r.nextIP%250)
	r.nextIP++
	dir := filepath.Join(r.cfg.stateDir, "pods", string(pod.UID))
	p := &podRuntime{
		rt: r, uid: pod.UID, namespace: pod.Namespace, name: pod.Name, pod: pod.DeepCopy(),
		dir: dir, rootfs: filepath.Join(dir, "rootfs"), ip: ip,
		containers: map[string]*containerState{},
		dirty:      make(chan struct{}, 1),
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
		conditions: map[corev1.PodConditionType]*corev1.PodCondition{},
	}
	for _, container := range pod.Spec.Containers {
		p.containers[container.Name] = &containerState{name: container.Name, image: container.Image,
			waitingReason: "ContainerCreating"}
	}
	return p
}

func (r *runtime) deletePodObject(pod *corev1.Pod) {
	uid := pod.UID
	err := r.client.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name,
		metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		klog.ErrorS(err, "deleting pod", "pod", pod.Namespace+"/"+pod.Name)
	}
}

// podRuntime is one pod: its sandbox (namespaces and root), containers and reported status.
type podRuntime struct {
	rt                       *runtime
	uid                      types.UID
	namespace, name, dir, ip string
	rootfs                   string
	dirty, stopCh, done      chan struct{}
	stopOnce                 sync.Once
	mu                       sync.Mutex
	pod                      *corev1.Pod
	sandbox                  *exec.Cmd
	sandboxPID               int
	containers               map[string]*containerState
	conditions               map[corev1.PodConditionType]*corev1.PodCondition
	startTime                *metav1.Time
	stopping, deleteFromAPI  bool
	gracePeriod              int64
	phase                    corev1.PodPhase
}

type containerState struct {
	name, image, id string
	process         *exec.Cmd
	running, ready  bool
	startedAt       metav1.Time
	restarts        int32
	lastTerminated  *corev1.ContainerStateTerminated
	waitingReason   string
	waitingMessage  string
}

func (p *podRuntime) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

func (p *podRuntime) update(pod *corev1.Pod) {
	p.mu.Lock()
	p.pod = pod.DeepCopy()
	p.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		grace := int64(30)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		p.requestStop(grace, true)
	}
}

func (p *podRuntime) requestStop(grace int64, deleteFromAPI bool) {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopping, p.gracePeriod, p.deleteFromAPI = true, grace, deleteFromAPI
		p.mu.Unlock()
		close(p.stopCh)
	})
}

func (p *podRuntime) event(kind, reason, message string) {
	p.mu.Lock()
	pod := p.pod.DeepCopy()
	p.mu.Unlock()
	p.rt.recorder.Event(pod, kind, reason, message)
}

func (p *podRuntime) setCondition(kind corev1.PodConditionType, status corev1.ConditionStatus, reason string) {
	existing := p.conditions[kind]
	if existing != nil && existing.Status == status {
		return
	}
	p.conditions[kind] = &corev1.PodCondition{Type: kind, Status: status, Reason: reason, LastTransitionTime: metav1.Now()}
}

func (p *podRuntime) markDirty() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// sleep waits for d, returning false when the pod is being stopped.
func (p *podRuntime) sleep(d time.Duration) bool {
	select {
	case <-p.stopCh:
		return false
	case <-time.After(d):
		return true
	}
}

// run is the pod's life: volumes, sandbox, containers, then termination.
func (p *podRuntime) run(ctx context.Context) {
	defer close(p.done)
	statusDone := make(chan struct{})
	statusCtx, stopStatus := context.WithCancel(ctx)
	go p.statusWriter(statusCtx, statusDone)

	p.mu.Lock()
	p.phase = corev1.PodPending
	now := metav1.Now()
	p.startTime = &now
	p.setCondition(corev1.PodReadyToStartContainers, corev1.ConditionFalse, "")
	p.setCondition(corev1.PodInitialized, corev1.ConditionTrue, "")
	p.setCondition(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady")
	p.setCondition(corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady")
	p.mu.Unlock()
	p.markDirty()

	var wg sync.WaitGroup
	mounts, ok := p.prepareVolumes()
	if ok && p.startSandbox(mounts) {
		p.mu.Lock()
		p.setCondition(corev1.PodReadyToStartContainers, corev1.ConditionTrue, "")
		p.mu.Unlock()
		p.markDirty()
		for _, container := range p.pod.Spec.Containers {
			wg.Add(1)
			go func(spec corev1.Container) {
				defer wg.Done()
				p.runContainer(spec)
			}(container)
		}
	}
	<-p.stopCh
	wg.Wait()
	p.stopSandbox()
	stopStatus()
	<-statusDone
	_ = os.RemoveAll(p.dir)
	p.rt.mu.Lock()
	delete(p.rt.pods, p.uid)
	p.rt.mu.Unlock()
	p.mu.Lock()
	deleteFromAPI, pod := p.deleteFromAPI, p.pod
	p.mu.Unlock()
	if deleteFromAPI {
		p.rt.deletePodObject(pod)
	}
}

// ---------------------------------------------------------------------------------------------
// volumes

type mount struct {
	source, target string
	readOnly       bool
	tmpfs          bool
}

// prepareVolumes materialises the pod's volumes and returns the first container's mounts,
// retrying (as the kubelet does, with FailedMount events) until they can be set up.
func (p *podRuntime) prepareVolumes() ([]mount, bool) {
	for attempt := 0; ; attempt++ {
		mounts, err := p.volumeMounts()
		if err == nil {
			return mounts, true
		}
		if attempt%5 == 0 {
			p.event(corev1.EventTypeWarning, "FailedMount", err.Error())
		}
		if !p.sleep(2 * time.Second) {
			return nil, false
		}
	}
}

func (p *podRuntime) volumeMounts() ([]mount, error) {
	ctx := context.Background()
	sources := map[string]string{}
	memory := map[string]bool{}
	for _, volume := range p.pod.Spec.Volumes {
		path := filepath.Join(p.dir, "volumes", volume.Name)
		switch {
		case volume.PersistentVolumeClaim != nil:
			claim, err := p.rt.client.CoreV1().PersistentVolumeClaims(p.namespace).Get(ctx, volume.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("Unable to attach or mount volumes: unmounted volumes=[%s]: %v", volume.Name, err)
			}
			if claim.Spec.VolumeName == "" {
				return nil, fmt.Errorf("Unable to attach or mount volumes: unmounted volumes=[%s]: persistentvolumeclaim %q is not bound", volume.Name, claim.Name)
			}
			pv, err := p.rt.client.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if pv.Spec.HostPath == nil {
				return nil, fmt.Errorf("volume %s: only hostPath persistent volumes are supported by this kubelet", pv.Name)
			}
			path = pv.Spec.HostPath.Path
			if err := os.MkdirAll(path, 0o755); err != nil {
				return nil, err
			}
			_ = os.Chown(path, p.rt.uid, p.rt.gid)
		case volume.HostPath != nil:
			path = volume.HostPath.Path
		case volume.Secret != nil:
			secret, err := p.rt.client.CoreV1().Secrets(p.namespace).Get(ctx, volume.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && volume.Secret.Optional != nil && *volume.Secret.Optional {
					secret = &corev1.Secret{}
				} else if apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("MountVolume.SetUp failed for volume %q : secret %q not found", volume.Name, volume.Secret.SecretName)
				} else {
					return nil, err
				}
			}
			if err := writeFiles(path, secret.Data, volume.Secret.Items, volume.Secret.DefaultMode); err != nil {
				return nil, err
			}
		case volume.ConfigMap != nil:
			configMap, err := p.rt.client.CoreV1().ConfigMaps(p.namespace).Get(ctx, volume.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("MountVolume.SetUp failed for volume %q : configmap %q not found", volume.Name, volume.ConfigMap.Name)
				}
				return nil, err
			}
			data := map[string][]byte{}
			for key, value := range configMap.Data {
				data[key] = []byte(value)
			}
			for key, value := range configMap.BinaryData {
				data[key] = value
			}
			if err := writeFiles(path, data, volume.ConfigMap.Items, volume.ConfigMap.DefaultMode); err != nil {
				return nil, err
			}
		default: // emptyDir, and volumes this kubelet leaves empty (projected, downwardAPI)
			if volume.EmptyDir != nil && volume.EmptyDir.Medium == corev1.StorageMediumMemory {
				memory[volume.Name] = true
			}
			if err := os.MkdirAll(path, 0o777); err != nil {
				return nil, err
			}
			_ = os.Chown(path, p.rt.uid, p.rt.gid)
		}
		sources[volume.Name] = path
	}
	if len(p.pod.Spec.Containers) == 0 {
		return nil, nil
	}
	var mounts []mount
	for _, volumeMount := range p.pod.Spec.Containers[0].VolumeMounts {
		source, ok := sources[volumeMount.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q of mount %s is not defined", volumeMount.Name, volumeMount.MountPath)
		}
		if memory[volumeMount.Name] {
			mounts = append(mounts, mount{target: volumeMount.MountPath, tmpfs: true})
			continue
		}
		if volumeMount.SubPath != "" {
			source = filepath.Join(source, volumeMount.SubPath)
			if err := os.MkdirAll(source, 0o777); err != nil {
				return nil, err
			}
			_ = os.Chown(source, p.rt.uid, p.rt.gid)
		}
		mounts = append(mounts, mount{source: source, target: volumeMount.MountPath, readOnly: volumeMount.ReadOnly})
	}
	return mounts, nil
}

func writeFiles(dir string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	write := func(path string, value []byte, fileMode os.FileMode) error {
		target := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, value, fileMode); err != nil {
			return err
		}
		return os.Chmod(target, fileMode)
	}
	if len(items) == 0 {
		for key, value := range data {
			if err := write(key, value, mode); err != nil {
				return err
			}
		}
		return nil
	}
	for _, item := range items {
		fileMode := mode
		if item.Mode != nil {
			fileMode = os.FileMode(*item.Mode)
		}
		if err := write(item.Path, data[item.Key], fileMode); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// sandbox

// startSandbox creates the pod's network and mount namespaces, held by a sleeping process: a
// loopback interface with the pod IP, and a root directory that shows the host's /usr and /etc
// read-only, private /tmp, /run and /dev/shm, the pod's volumes at their mount paths and the
// PostgreSQL binaries under /opt/bitnami/postgresql/bin, as in the Bitnami image.
func (p *podRuntime) startSandbox(mounts []mount) bool {
	for _, dir := range []string{"usr", "etc", "dev", "proc", "tmp", "run", "var/tmp", ".pgk8s", "opt/bitnami/postgresql/bin"} {
		if err := os.MkdirAll(filepath.Join(p.rootfs, dir), 0o755); err != nil {
			klog.ErrorS(err, "creating pod root")
			return false
		}
	}
	_ = os.Chmod(filepath.Join(p.rootfs, "tmp"), 0o1777)
	for _, link := range []string{"bin", "lib", "lib64", "sbin"} {
		_ = os.Symlink("usr/"+link, filepath.Join(p.rootfs, link))
	}
	_ = os.Symlink("../run", filepath.Join(p.rootfs, "var/run"))
	// Symbolic links, not a bind mount: PostgreSQL finds its libraries and share directory
	// relative to the real location of its executable.
	binaries, _ := os.ReadDir(p.rt.pgBinDir)
	for _, binary := range binaries {
		_ = os.Symlink(filepath.Join(p.rt.pgBinDir, binary.Name()), filepath.Join(p.rootfs, "opt/bitnami/postgresql/bin", binary.Name()))
	}
	if err := os.WriteFile(filepath.Join(p.rootfs, ".pgk8s/entrypoint.sh"), []byte(entrypointScript), 0o755); err != nil {
		return false
	}
	if err := os.WriteFile(filepath.Join(p.rootfs, ".pgk8s/init.sql"), []byte(initSQL), 0o644); err != nil {
		return false
	}
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(mounts[i].target), "/") < strings.Count(filepath.Clean(mounts[j].target), "/")
	})
	var script strings.Builder
	quote := shellQuote
	root := quote(p.rootfs)
	fmt.Fprintf(&script, "set -e\nip link set lo up\nip addr add %s/32 dev lo\n", p.ip)
	fmt.Fprintf(&script, "mount --rbind /usr %[1]s/usr\nmount -o remount,bind,ro %[1]s/usr\n", root)
	fmt.Fprintf(&script, "mount --bind /etc %[1]s/etc\nmount -o remount,bind,ro %[1]s/etc\n", root)
	fmt.Fprintf(&script, "mount --rbind /dev %[1]s/dev\nmount -t tmpfs -o size=256m shm %[1]s/dev/shm\n", root)
	fmt.Fprintf(&script, "mount -t proc proc %[1]s/proc\nmount -t tmpfs run %[1]s/run\n", root)
	// The Bitnami image's client tools look for the server's socket in /tmp, the machine's
	// Debian ones in /var/run/postgresql: point the latter at the former.
	fmt.Fprintf(&script, "ln -s /tmp %s/run/postgresql\n", root)
	for _, m := range mounts {
		target := quote(filepath.Join(p.rootfs, m.target))
		fmt.Fprintf(&script, "mkdir -p %s\n", target)
		if m.tmpfs {
			fmt.Fprintf(&script, "mount -t tmpfs -o size=256m tmpfs %s\n", target)
			continue
		}
		fmt.Fprintf(&script, "mount --bind %s %s\n", quote(m.source), target)
		if m.readOnly {
			fmt.Fprintf(&script, "mount -o remount,bind,ro %s\n", target)
		}
	}
	script.WriteString("echo ready\nexec sleep infinity\n")

	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", script.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return false
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		p.event(corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
		return false
	}
	line := make([]byte, 6)
	n, _ := stdout.Read(line)
	if string(line[:n]) != "ready\n" {
		_ = cmd.Wait()
		message := "Failed to create pod sandbox: " + strings.TrimSpace(stderr.String())
		klog.ErrorS(nil, message, "pod", p.namespace+"/"+p.name)
		p.event(corev1.EventTypeWarning, "FailedCreatePodSandBox", message)
		return false
	}
	p.mu.Lock()
	p.sandbox, p.sandboxPID = cmd, cmd.Process.Pid
	p.mu.Unlock()
	return true
}

func (p *podRuntime) stopSandbox() {
	p.mu.Lock()
	sandbox := p.sandbox
	p.sandbox = nil
	p.mu.Unlock()
	if sandbox != nil {
		_ = sandbox.Process.Kill()
		_ = sandbox.Wait()
	}
}

func shellQuote(text string) string {
	return "'" + strings.ReplaceAll(text, "'", `'\''`) + "'"
}

// enter returns the argv that runs argv inside the pod as the container user, after
// `nsenter`ing its namespaces and `chroot`ing into its root.
func (p *podRuntime) enter(argv []string) ([]string, error) {
	p.mu.Lock()
	pid := p.sandboxPID
	p.mu.Unlock()
	if pid == 0 {
		return nil, fmt.Errorf("pod sandbox is not running")
	}
	prefix := []string{"nsenter", "-t", strconv.Itoa(pid), "-n", "-m", "--", "chroot", p.rootfs,
		"setpriv", "--reuid=" + strconv.Itoa(p.rt.uid), "--regid=" + strconv.Itoa(p.rt.gid), "--init-groups",
		"--pdeathsig", "KILL", "--"}
	return append(prefix, argv...), nil
}

// ---------------------------------------------------------------------------------------------
// containers

const containerPath = "/opt/bitnami/postgresql/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// containerEnv resolves the container's environment the way the kubelet does for the
// variables the chart uses (values, Secret and ConfigMap keys, pod fields).
func (p *podRuntime) containerEnv(spec corev1.Container) ([]string, error) {
	ctx := context.Background()
	env := []string{"PATH=" + containerPath, "HOME=/tmp", "HOSTNAME=" + p.name}
	for _, from := range spec.EnvFrom {
		if from.SecretRef != nil {
			secret, err := p.rt.client.CoreV1().Secrets(p.namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			for key, value := range secret.Data {
				env = append(env, from.Prefix+key+"="+string(value))
			}
		}
		if from.ConfigMapRef != nil {
			configMap, err := p.rt.client.CoreV1().ConfigMaps(p.namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			for key, value := range configMap.Data {
				env = append(env, from.Prefix+key+"="+value)
			}
		}
	}
	for _, variable := range spec.Env {
		value := variable.Value
		if from := variable.ValueFrom; from != nil {
			switch {
			case from.SecretKeyRef != nil:
				secret, err := p.rt.client.CoreV1().Secrets(p.namespace).Get(ctx, from.SecretKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, fmt.Errorf("secret %q not found", from.SecretKeyRef.Name)
				}
				value = string(secret.Data[from.SecretKeyRef.Key])
			case from.ConfigMapKeyRef != nil:
				configMap, err := p.rt.client.CoreV1().ConfigMaps(p.namespace).Get(ctx, from.ConfigMapKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, fmt.Errorf("configmap %q not found", from.ConfigMapKeyRef.Name)
				}
				value = configMap.Data[from.ConfigMapKeyRef.Key]
			case from.FieldRef != nil:
				switch from.FieldRef.FieldPath {
				case "metadata.name":
					value = p.name
				case "metadata.namespace":
					value = p.namespace
				case "status.podIP":
					value = p.ip
				case "spec.nodeName":
					value = p.rt.cfg.nodeName
				case "status.hostIP":
					value = "127.0.0.1"
				}
			}
		}
		env = append(env, variable.Name+"="+value)
	}
	return env, nil
}

// pullable reports whether this kubelet can "pull" an image: only PostgreSQL images, which map
// to the machine's server, and never one from a registry under the reserved .invalid domain.
func pullable(image string) bool {
	name := image
	if at := strings.Index(name, "@"); at >= 0 {
		name = name[:at]
	}
	if colon := strings.LastIndex(name, ":"); colon > strings.LastIndex(name, "/") {
		name = name[:colon]
	}
	host := strings.SplitN(name, "/", 2)[0]
	return strings.HasSuffix(name, "/postgresql") && !strings.HasSuffix(host, ".invalid")
}

func randomID() string {
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// runContainer pulls (or fails to), starts, probes and restarts one container until the pod stops.
func (p *podRuntime) runContainer(spec corev1.Container) {
	state := p.containerState(spec.Name)
	backoff := 10 * time.Second
	if !pullable(spec.Image) {
		for attempt := 0; ; attempt++ {
			message := fmt.Sprintf("failed to pull and unpack image %q: failed to resolve reference %q: %q: not found", spec.Image, spec.Image, spec.Image)
			p.setWaiting(state, "ErrImagePull", message)
			p.event(corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %s", spec.Image, message))
			p.event(corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
			if !p.sleep(2 * time.Second) {
				return
			}
			p.setWaiting(state, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", spec.Image))
			p.event(corev1.EventTypeNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", spec.Image))
			if !p.sleep(min(backoff, 5*time.Minute)) {
				return
			}
			backoff *= 2
		}
	}
	p.event(corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", spec.Image))
	backoff = 10 * time.Second
	for {
		started := time.Now()
		exitCode, finished, ok := p.runOnce(spec, state)
		if !ok {
			return
		}
		if time.Since(started) > 10*time.Minute {
			backoff = 10 * time.Second
		}
		select {
		case <-p.stopCh:
			return
		default:
		}
		_ = finished
		_ = exitCode
		message := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", backoff, spec.Name, p.name, p.namespace, p.uid)
		p.setWaiting(state, "CrashLoopBackOff", message)
		p.event(corev1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", spec.Name, p.name, p.namespace, p.uid))
		if !p.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, 5*time.Minute)
	}
}

func (p *podRuntime) containerState(name string) *containerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.containers[name]
}

func (p *podRuntime) setWaiting(state *containerState, reason, message string) {
	p.mu.Lock()
	state.waitingReason, state.waitingMessage = reason, message
	p.mu.Unlock()
	p.markDirty()
}

// logPath is the file holding the output of a container's nth run.
func (p *podRuntime) logPath(container string, restart int32) string {
	return filepath.Join(p.dir, "logs", fmt.Sprintf("%s-%d.log", container, restart))
}

// runOnce runs the container's process until it exits or the pod stops. ok is false when the
// pod is stopping.
func (p *podRuntime) runOnce(spec corev1.Container, state *containerState) (exitCode int, finished time.Time, ok bool) {
	env, err := p.containerEnv(spec)
	if err != nil {
		p.setWaiting(state, "CreateContainerConfigError", err.Error())
		p.event(corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return 1, time.Now(), p.sleep(5 * time.Second)
	}
	argv, err := p.enter([]string{"/bin/sh", "/.pgk8s/entrypoint.sh"})
	if err != nil {
		return 1, time.Now(), p.sleep(5 * time.Second)
	}
	p.mu.Lock()
	restarts := state.restarts
	p.mu.Unlock()
	if err := os.MkdirAll(filepath.Join(p.dir, "logs"), 0o755); err != nil {
		return 1, time.Now(), false
	}
	logFile, err := os.OpenFile(p.logPath(spec.Name, restarts), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 1, time.Now(), false
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.event(corev1.EventTypeNormal, "Created", "Created container: "+spec.Name)
	if err := cmd.Start(); err != nil {
		p.setWaiting(state, "RunContainerError", err.Error())
		return 128, time.Now(), p.sleep(5 * time.Second)
	}
	p.mu.Lock()
	state.process, state.running, state.ready = cmd, true, false
	state.id = "pgk8s://" + randomID()
	state.startedAt = metav1.Now()
	state.waitingReason, state.waitingMessage = "", ""
	p.phase = corev1.PodRunning
	p.mu.Unlock()
	p.markDirty()
	p.event(corev1.EventTypeNormal, "Started", "Started container "+spec.Name)

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		p.probeReadiness(spec, state, exited)
	}()

	stopped := false
	select {
	case <-exited:
	case <-p.stopCh:
		stopped = true
		p.event(corev1.EventTypeNormal, "Killing", "Stopping container "+spec.Name)
		p.mu.Lock()
		grace := p.gracePeriod
		p.mu.Unlock()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Duration(grace) * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	<-probeDone
	finished = time.Now()
	exitCode = cmd.ProcessState.ExitCode()
	if status, isWait := cmd.ProcessState.Sys().(syscall.WaitStatus); isWait && status.Signaled() {
		exitCode = 128 + int(status.Signal())
	}
	reason := "Error"
	if exitCode == 0 {
		reason = "Completed"
	}
	p.mu.Lock()
	state.running, state.ready, state.process = false, false, nil
	state.lastTerminated = &corev1.ContainerStateTerminated{
		ExitCode: int32(exitCode), Reason: reason, StartedAt: state.startedAt,
		FinishedAt: metav1.NewTime(finished), ContainerID: state.id,
	}
	if !stopped {
		state.restarts++
	}
	p.mu.Unlock()
	p.markDirty()
	return exitCode, finished, !stopped
}

// probeReadiness runs the container's exec readiness probe inside the pod (every second until
// it first passes, then every periodSeconds), and marks the container ready or not.
func (p *podRuntime) probeReadiness(spec corev1.Container, state *containerState, exited <-chan struct{}) {
	probe := spec.ReadinessProbe
	period, timeout, initialDelay := 10*time.Second, 5*time.Second, 5*time.Second
	if probe != nil {
		if probe.PeriodSeconds > 0 {
			period = time.Duration(probe.PeriodSeconds) * time.Second
		}
		if probe.TimeoutSeconds > 0 {
			timeout = time.Duration(probe.TimeoutSeconds) * time.Second
		}
		initialDelay = time.Duration(probe.InitialDelaySeconds) * time.Second
	}
	started := time.Now()
	ready := false
	for {
		passed, output := p.probeOnce(spec, probe, timeout)
		if passed != ready {
			ready = passed
			p.mu.Lock()
			state.ready = passed
			p.mu.Unlock()
			p.markDirty()
		}
		if !passed && time.Since(started) > initialDelay+period {
			p.event(corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: "+output)
		}
		wait := time.Second
		if ready {
			wait = min(period, 5*time.Second)
		}
		select {
		case <-exited:
			return
		case <-p.stopCh:
			return
		case <-time.After(wait):
		}
	}
}

func (p *podRuntime) probeOnce(spec corev1.Container, probe *corev1.Probe, timeout time.Duration) (bool, string) {
	command := []string{"pg_isready", "-h", "127.0.0.1", "-p", "5432"}
	if probe != nil && probe.Exec != nil {
		command = probe.Exec.Command
	}
	env, err := p.containerEnv(spec)
	if err != nil {
		return false, err.Error()
	}
	argv, err := p.enter(command)
	if err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	output, err := cmd.CombinedOutput()
	return err == nil, strings.TrimSpace(string(output))
}

// ---------------------------------------------------------------------------------------------
// status

func (p *podRuntime) statusWriter(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.dirty:
		}
		err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			current, err := p.rt.client.CoreV1().Pods(p.namespace).Get(ctx, p.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if current.UID != p.uid {
				return nil
			}
			current.Status = p.status(current.Status)
			_, err = p.rt.client.CoreV1().Pods(p.namespace).UpdateStatus(ctx, current, metav1.UpdateOptions{})
			return err
		})
		if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "updating pod status", "pod", p.namespace+"/"+p.name)
			p.markDirty()
			time.Sleep(time.Second)
		}
	}
}

// status is the pod status a kubelet would report now, keeping the scheduler's conditions.
func (p *podRuntime) status(previous corev1.PodStatus) corev1.PodStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	allReady := len(p.pod.Spec.Containers) > 0
	var statuses []corev1.ContainerStatus
	for _, spec := range p.pod.Spec.Containers {
		state := p.containers[spec.Name]
		status := corev1.ContainerStatus{
			Name: spec.Name, Image: spec.Image, ImageID: imageID(spec.Image), ContainerID: state.id,
			RestartCount: state.restarts, Ready: state.running && state.ready,
			Started: ptrBool(state.running),
		}
		switch {
		case state.running:
			status.State.Running = &corev1.ContainerStateRunning{StartedAt: state.startedAt}
		case state.waitingReason != "":
			status.State.Waiting = &corev1.ContainerStateWaiting{Reason: state.waitingReason, Message: state.waitingMessage}
		case state.lastTerminated != nil:
			status.State.Terminated = state.lastTerminated.DeepCopy()
		default:
			status.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		if state.lastTerminated != nil && status.State.Terminated == nil {
			status.LastTerminationState.Terminated = state.lastTerminated.DeepCopy()
		}
		if state.id == "" {
			status.ImageID, status.ContainerID = "", ""
			if state.waitingReason == "ErrImagePull" || state.waitingReason == "ImagePullBackOff" {
				status.ImageID = ""
			}
		}
		allReady = allReady && status.Ready
		statuses = append(statuses, status)
	}
	if allReady {
		p.setCondition(corev1.ContainersReady, corev1.ConditionTrue, "")
		p.setCondition(corev1.PodReady, corev1.ConditionTrue, "")
	} else {
		p.setCondition(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady")
		p.setCondition(corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady")
	}
	status := corev1.PodStatus{
		Phase:     p.phase,
		HostIP:    "127.0.0.1",
		HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
		StartTime: p.startTime,
		QOSClass:  previous.QOSClass,
	}
	if p.sandboxPID != 0 {
		status.PodIP = p.ip
		status.PodIPs = []corev1.PodIP{{IP: p.ip}}
	}
	var notReady []string
	for _, s := range statuses {
		if !s.Ready {
			notReady = append(notReady, s.Name)
		}
	}
	order := []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady}
	for _, kind := range order {
		condition := *p.conditions[kind]
		if (kind == corev1.PodReady || kind == corev1.ContainersReady) && condition.Status == corev1.ConditionFalse {
			condition.Message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
		}
		status.Conditions = append(status.Conditions, condition)
	}
	for _, condition := range previous.Conditions {
		if condition.Type == corev1.PodScheduled || condition.Type == corev1.DisruptionTarget {
			status.Conditions = append(status.Conditions, condition)
		}
	}
	status.ContainerStatuses = statuses
	for _, spec := range p.pod.Spec.InitContainers {
		status.InitContainerStatuses = append(status.InitContainerStatuses, corev1.ContainerStatus{
			Name: spec.Name, Image: spec.Image, ImageID: imageID(spec.Image), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}},
		})
	}
	return status
}

func ptrBool(value bool) *bool { return &value }

// imageID is a stable stand-in for the digest a runtime reports.
func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	name := image
	if colon := strings.LastIndex(name, ":"); colon > strings.LastIndex(name, "/") {
		name = name[:colon]
	}
	return name + "@sha256:" + hex.EncodeToString(sum[:])
}
