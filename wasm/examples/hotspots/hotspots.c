/*
 * hotspots - functions whose self value is at least threshold_pct % of the profile total.
 *
 * Self is summed per name over all nodes (pprof's "flat"); the share is flat / total of the
 * root. Findings are sorted by value (largest first, ties by name index) and capped at
 * max_findings. Severity is "critical" from critical_pct up, else "warning".
 * Config: threshold_pct (5), critical_pct (25), max_findings (20).
 */
#include "profscope_abi.h"

PSP_DEFINE_ABI()

static const char TITLE[] = "hot function";

PSP_EXPORT(psp_analyze) int64_t psp_analyze(int32_t ptr, int32_t len) {
    psf1_view v;
    const char *err = psf1_open(&v, ptr, len);
    if (err) return psp_error(err);
    double threshold = psp_meta_number(&v, "threshold_pct", 5.0);
    double critical = psp_meta_number(&v, "critical_pct", 25.0);
    double maxf_d = psp_meta_number(&v, "max_findings", 20.0);
    uint32_t maxf = maxf_d < 1 ? 1 : maxf_d > 1000 ? 1000 : (uint32_t)maxf_d;

    int64_t *flat = (int64_t *)psp_alloc_bytes(8u * (v.n_names ? v.n_names : 1));
    uint32_t *top = (uint32_t *)psp_alloc_bytes(4u * maxf);
    if (!flat || !top) return psp_error("out of memory");
    for (uint32_t j = 0; j < v.n_names; j++) flat[j] = 0;
    for (uint32_t i = 1; i < v.n_nodes; i++) {
        uint32_t nm = v.name[i];
        if (nm < v.n_names) flat[nm] += v.self[i];
    }
    int64_t total = v.n_nodes ? v.total[0] : 0;

    /* keep the maxf largest qualifying names in `top`, sorted by value descending */
    uint32_t k = 0;
    if (total > 0) {
        for (uint32_t j = 0; j < v.n_names; j++) {
            if (flat[j] <= 0) continue;
            double pct = (double)flat[j] / (double)total * 100.0;
            if (pct < threshold) continue;
            if (k == maxf && flat[top[k - 1]] >= flat[j]) continue;
            uint32_t pos = k < maxf ? k++ : k - 1;
            while (pos > 0 && flat[top[pos - 1]] < flat[j]) { top[pos] = top[pos - 1]; pos--; }
            top[pos] = j;
        }
    }

    uint32_t unit_len = 0;
    const char *unit = psp_meta_string(&v, "sample_type", &unit_len);
    if (!unit || !unit_len) { unit = "value"; unit_len = 5; }
    uint64_t cap = 64;
    for (uint32_t t = 0; t < k; t++) {
        uint32_t nl;
        psf1_name(&v, top[t], &nl);
        cap += 256 + unit_len + 2u * PSP_JSON_ESCAPED_MAX((uint64_t)nl);
    }
    if (cap > 0xFFFFFFF0u) return psp_error("output too large");
    psp_out o;
    if (!psp_out_init(&o, (uint32_t)cap)) return psp_error("out of memory");
    psp_out_str(&o, "{\"findings\":[");
    for (uint32_t t = 0; t < k; t++) {
        uint32_t nl;
        const char *name = psf1_name(&v, top[t], &nl);
        double share = (double)flat[top[t]] / (double)total;
        if (t) psp_out_str(&o, ",");
        psp_out_str(&o, share * 100.0 >= critical ? "{\"severity\":\"critical\"" : "{\"severity\":\"warning\"");
        psp_out_str(&o, ",\"title\":\"");
        psp_out_str(&o, TITLE);
        psp_out_str(&o, "\",\"function\":");
        psp_out_json_str(&o, name, nl);
        psp_out_str(&o, ",\"value\":");
        psp_out_i64(&o, flat[top[t]]);
        psp_out_str(&o, ",\"share\":");
        psp_out_fixed(&o, share, 6);
        psp_out_str(&o, ",\"message\":\"");
        /* the name once more, escaped, without its quotes */
        uint32_t start = o.len;
        psp_out_json_str(&o, name, nl);
        if (!o.failed) {
            for (uint32_t i = start; i + 2 < o.len; i++) o.buf[i] = o.buf[i + 1];
            o.len -= 2;
        }
        psp_out_str(&o, " holds ");
        psp_out_fixed(&o, share * 100.0, 1);
        psp_out_str(&o, "% of self ");
        psp_out_raw(&o, unit, unit_len);
        psp_out_str(&o, "\"}");
    }
    psp_out_str(&o, "]}");
    psp_log(PSP_DEBUG, k ? "hotspots: reporting hot functions" : "hotspots: nothing above threshold");
    return psp_out_finish(&o);
}
