import sys, time
from PIL import Image
from gradio_client import Client, handle_file
src = Image.open("/work/main/cnaps_demo/examples/starry_night.png").convert("RGB").resize((600,600), Image.LANCZOS)
src.save("/tmp/prof/in600.png")
c = Client("http://127.0.0.1:7901", verbose=False)
for engine in sys.argv[1:] or ["realcugan"]:
    for i in range(2):
        t = time.perf_counter()
        out = c.predict(image=handle_file("/tmp/prof/in600.png"), engine=engine, api_name="/upscale")
        print(engine, i, round(time.perf_counter() - t, 2), flush=True)
