from components.model.distributed import native_cpu_bf16, resolve_precision

ZEN4 = "flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512vl avx512_bf16 avx512vbmi"
SKYLAKE = "flags\t\t: fpu sse2 avx2 avx512f avx512dq avx512bw avx512vl"  # AVX512, BF16 only emulated
GRAVITON3 = "Features\t: fp asimd sve bf16 i8mm"


def test_auto_precision_is_bf16_on_cuda_and_on_cpus_with_bf16_instructions():
    assert resolve_precision("auto", "cuda", SKYLAKE) == "bf16"
    assert resolve_precision("auto", "cpu", ZEN4) == "bf16"
    assert resolve_precision("auto", "cpu", GRAVITON3) == "bf16"
    assert resolve_precision("auto", "cpu", SKYLAKE) == "fp32"


def test_an_explicit_precision_wins_over_the_machine():
    assert resolve_precision("fp32", "cpu", ZEN4) == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"
    assert resolve_precision("bf16", "cpu", SKYLAKE) == "bf16"


def test_this_machines_flags_are_read_when_none_are_given():
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo")
    expected = native_cpu_bf16(cpuinfo.read_text()) if cpuinfo.is_file() else False
    assert native_cpu_bf16() is expected
