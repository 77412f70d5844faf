package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// provisioner plays the external provisioner and resizer of this node's StorageClasses: a
// hostPath PersistentVolume (a directory under the state dir) for each Pending claim of a class
// whose provisioner is ours, deleted with its directory once released (reclaim policy Delete),
// and grown when a claim of a class with allowVolumeExpansion asks for more.
type provisioner struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	cfg      config
	classes  cache.Indexer
}

func newProvisioner(client kubernetes.Interface, recorder record.EventRecorder, cfg config) *provisioner {
	return &provisioner{client: client, recorder: recorder, cfg: cfg}
}

func (p *provisioner) run(ctx context.Context) {
	factory := informers.NewSharedInformerFactory(p.client, 30*time.Second)
	classes := factory.Storage().V1().StorageClasses().Informer()
	p.classes = classes.GetIndexer()
	claims := factory.Core().V1().PersistentVolumeClaims().Informer()
	volumes := factory.Core().V1().PersistentVolumes().Informer()
	_, _ = claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.claim(ctx, obj.(*corev1.PersistentVolumeClaim)) },
		UpdateFunc: func(_, obj any) { p.claim(ctx, obj.(*corev1.PersistentVolumeClaim)) },
	})
	_, _ = volumes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.volume(ctx, obj.(*corev1.PersistentVolume)) },
		UpdateFunc: func(_, obj any) { p.volume(ctx, obj.(*corev1.PersistentVolume)) },
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	<-ctx.Done()
}

func (p *provisioner) class(name string) *storagev1.StorageClass {
	if name == "" || p.classes == nil {
		return nil
	}
	obj, exists, err := p.classes.GetByKey(name)
	if err != nil || !exists {
		return nil
	}
	class := obj.(*storagev1.StorageClass)
	if class.Provisioner != provisionerName {
		return nil
	}
	return class
}

func (p *provisioner) claim(ctx context.Context, claim *corev1.PersistentVolumeClaim) {
	if claim.DeletionTimestamp != nil || claim.Spec.StorageClassName == nil {
		return
	}
	class := p.class(*claim.Spec.StorageClassName)
	if class == nil {
		return
	}
	if claim.Spec.VolumeName == "" && claim.Status.Phase == corev1.ClaimPending {
		p.provision(ctx, claim, class)
		return
	}
	if claim.Status.Phase == corev1.ClaimBound {
		p.expand(ctx, claim, class)
	}
}

func (p *provisioner) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) {
	name := "pvc-" + string(claim.UID)
	path := filepath.Join(p.cfg.stateDir, "volumes", name)
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	hostPathType := corev1.HostPathDirectoryOrCreate
	volume := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": provisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    &mode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &hostPathType},
			},
		},
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		p.recorder.Eventf(claim, corev1.EventTypeWarning, "ProvisioningFailed", "failed to provision volume with StorageClass %q: %v", class.Name, err)
		return
	}
	_, err := p.client.CoreV1().PersistentVolumes().Create(ctx, volume, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return
	}
	if err != nil {
		p.recorder.Eventf(claim, corev1.EventTypeWarning, "ProvisioningFailed", "failed to provision volume with StorageClass %q: %v", class.Name, err)
		return
	}
	p.recorder.Eventf(claim, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume %s", name)
}

// expand grows the volume to what the claim requests, as an external resizer would, when the
// class allows it.
func (p *provisioner) expand(ctx context.Context, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) {
	requested := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	current := claim.Status.Capacity[corev1.ResourceStorage]
	if requested.Cmp(current) <= 0 || class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion {
		return
	}
	volume, err := p.client.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return
	}
	volume.Spec.Capacity[corev1.ResourceStorage] = requested
	if _, err := p.client.CoreV1().PersistentVolumes().Update(ctx, volume, metav1.UpdateOptions{}); err != nil {
		klog.ErrorS(err, "expanding volume", "volume", volume.Name)
		return
	}
	fresh, err := p.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
	if err != nil {
		return
	}
	fresh.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: requested}
	fresh.Status.Conditions = nil
	fresh.Status.AllocatedResources = nil
	fresh.Status.AllocatedResourceStatuses = nil
	if _, err := p.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		klog.ErrorS(err, "expanding claim", "claim", claim.Namespace+"/"+claim.Name)
		return
	}
	p.recorder.Eventf(fresh, corev1.EventTypeNormal, "VolumeResizeSuccessful", "resize volume %q by resizer %q succeeded", volume.Name, provisionerName)
}

// volume deletes a released volume of ours whose reclaim policy is Delete, with its directory.
func (p *provisioner) volume(ctx context.Context, volume *corev1.PersistentVolume) {
	if volume.Annotations["pv.kubernetes.io/provisioned-by"] != provisionerName || volume.DeletionTimestamp != nil {
		return
	}
	if volume.Status.Phase != corev1.VolumeReleased || volume.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return
	}
	if volume.Spec.HostPath != nil {
		_ = os.RemoveAll(volume.Spec.HostPath.Path)
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, volume.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.ErrorS(err, "deleting released volume", "volume", volume.Name)
	}
}
