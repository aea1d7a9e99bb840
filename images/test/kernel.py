# Run by check.py in a notebook kernel: what a user's first cell would do.
import pwd
import os

import dask.array as da
import dask.dataframe as dd
import matplotlib.pyplot as plt
import pandas as pd
from distributed import Client

client = Client(timeout=60)  # DASK_SCHEDULER_ADDRESS
client.wait_for_workers(2, timeout=300)
print("sum", da.ones((2000, 2000), chunks=500).sum().compute())
df = dd.from_pandas(pd.DataFrame({"x": range(100)}), npartitions=4)
print("dataframe sum", df.x.sum().compute())
workers = client.scheduler_info()["workers"].values()
print("worker memory limits", sorted(w["memory_limit"] for w in workers))
plt.plot([1, 2, 3])
plt.savefig("smoke.png")
print("cwd", os.getcwd(), "home", os.environ["HOME"], "user", pwd.getpwuid(os.getuid()).pw_name, os.getuid())
client.close()
