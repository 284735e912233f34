"""dlgm.allocator: freed temporaries stay mapped, so making them again costs no page faults."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

FAULTS = """
import resource, sys, torch
from dlgm.allocator import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else None
x = torch.rand(512, 1024, dtype=torch.float64)  # 4 MB
def step():  # four 4 MB temporaries alive at once, then freed, as in a forward-backward step
    temps = [x * i for i in range(4)]
    return sum(float(t.sum()) for t in temps)
for _ in range(10):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    step()
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode):
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    took, faults = out.stdout.split()
    return took, int(faults)


def test_kept_heap_memory_makes_repeated_temporaries_fault_free():
    took, kept = page_faults("keep")
    _, default = page_faults("default")
    assert took == "True"
    # by default the freed blocks go back to the kernel and each step faults their pages in again;
    # kept, only the heap's own growth faults, once: a few of the 1,024 pages of a 4 MB temporary
    assert default > 100 * 200 and kept < 16 * 1024 and kept * 5 < default
