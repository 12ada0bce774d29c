// Package tenancytest renders dcgm-exporter- and AMD device-metrics-exporter-shaped expositions whose GPUs belong to namespaces, for the tenancy filter's tests and benchmarks.
package tenancytest

import (
	"fmt"
	"strings"
)

// dcgmFields are the families dcgm-exporter's default counters file exposes
// (the subset its 8-GPU expositions spend their bytes on).
var dcgmFields = []struct{ name, typ, help string }{
	{"DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."},
	{"DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."},
	{"DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."},
	{"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."},
	{"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."},
	{"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."},
	{"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."},
	{"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."},
	{"DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."},
	{"DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %)."},
	{"DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %)."},
	{"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."},
	{"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."},
	{"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."},
	{"DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "Total number of NVLink bandwidth counters for all lanes."},
	{"DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status"},
	{"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."},
	{"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."},
	{"DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active sending or receiving data."},
	{"DCGM_FI_PROF_PCIE_TX_BYTES", "counter", "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second."},
	{"DCGM_FI_PROF_PCIE_RX_BYTES", "counter", "The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second."},
}

// Owner is the pod holding GPU i of a node, as dcgm-exporter's pod
// mapping labels it; an empty namespace is an idle GPU (no pod labels).
type Owner struct{ Namespace, Pod string }

// DCGM is a dcgm-exporter text exposition of one node with len(owners) GPUs,
// repeated rounds times over the families (rounds > 1 only to reach a size).
func DCGM(owners []Owner, rounds int) string {
	var b strings.Builder
	for i := 0; i < rounds*len(dcgmFields); i++ {
		dcgmFamily(&b, owners, i)
	}
	return b.String()
}

// dcgmFamily writes family i of DCGM: dcgmFields[i], renamed after the
// first round.
func dcgmFamily(b *strings.Builder, owners []Owner, i int) {
	f, r := dcgmFields[i%len(dcgmFields)], i/len(dcgmFields)
	name := f.name
	if r > 0 {
		name = fmt.Sprintf("%s_%d", f.name, r)
	}
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, f.help, name, f.typ)
	for g, o := range owners {
		fmt.Fprintf(b, `%s{gpu="%d",UUID="GPU-3f1c2a7e-%04d-4b6e-9c1d-5a8f0e2d7b%02d",pci_bus_id="00000000:%02X:00.0",device="nvidia%d",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node-1",DCGM_FI_DRIVER_VERSION="550.54.15"`,
			name, g, r, g, 0x18+g*0x10, g)
		if o.Namespace != "" {
			fmt.Fprintf(b, `,container="trainer",namespace="%s",pod="%s"`, o.Namespace, o.Pod)
		}
		fmt.Fprintf(b, "} %d\n", 1000+g*7+r)
	}
}

// EightGPUs is a node whose GPUs are held by team-a (3), team-b (3) and
// nobody (2).
var EightGPUs = []Owner{
	{"team-a", "trainer-0"}, {"team-a", "trainer-1"}, {"team-b", "infer-0"}, {}, {"team-b", "infer-1"}, {"team-a", "trainer-2"}, {"team-b", "infer-2"}, {},
}

// DCGMOfSize is an 8-GPU DCGM exposition of whole families, just over size
// bytes.
func DCGMOfSize(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		dcgmFamily(&b, EightGPUs, i)
	}
	return b.String()
}

// amdFields are families of AMD's device-metrics-exporter.
var amdFields = []string{
	"gpu_nodes_total", "gpu_package_power", "gpu_average_package_power", "gpu_edge_temperature", "gpu_junction_temperature",
	"gpu_memory_temperature", "gpu_gfx_activity", "gpu_umc_activity", "gpu_mma_activity", "gpu_vcn_activity",
	"gpu_total_vram", "gpu_used_vram", "gpu_free_vram", "gpu_total_visible_vram", "gpu_used_visible_vram",
	"gpu_pcie_bandwidth", "gpu_pcie_link_speed", "gpu_pcie_link_width", "gpu_energy_consumed", "gpu_clock",
	"gpu_power_usage", "gpu_ecc_correct_total", "gpu_ecc_uncorrect_total", "gpu_xgmi_link_rx", "gpu_xgmi_link_tx",
	"gpu_gfx_busy_instantaneous", "gpu_vcn_busy_instantaneous", "gpu_jpeg_busy_instantaneous", "gpu_violation_current_accumulated_counter",
	"gpu_violation_ppt_residency_accumulated", "gpu_prof_sm_active", "gpu_prof_occupancy_per_active_cu",
}

// AMD is an AMD device-metrics-exporter-shaped text exposition of at least
// size bytes: gpu_* families over 8 GPUs, each series carrying gpu_id,
// serial_number, card_model, hostname and, for a GPU in use, pod and
// namespace; per-XCP and per-clock series make the families long.
func AMD(size int) string {
	var b strings.Builder
	for r := 0; b.Len() < size; r++ {
		for _, f := range amdFields {
			name := f
			if r > 0 {
				name = fmt.Sprintf("%s_%d", f, r)
			}
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, strings.ReplaceAll(f, "_", " "), name)
			for gpu, o := range EightGPUs {
				for xcp := 0; xcp < 4; xcp++ {
					fmt.Fprintf(&b, `%s{card_model="AMD Instinct MI300X OAM",clock_index="%d",gpu_id="%d",gpu_partition_id="0",gpu_compute_partition_type="spx",hostname="mi300-node-7",serial_number="692251001124%02d",driver_version="6.10.5"`,
						name, xcp, gpu, gpu)
					if o.Namespace != "" {
						fmt.Fprintf(&b, `,pod="%s",namespace="%s",container="worker"`, o.Pod, o.Namespace)
					}
					fmt.Fprintf(&b, "} %d.%d\n", 100+gpu, xcp)
				}
			}
		}
	}
	return b.String()
}
