"""The page's run logic, without Gradio: what a web visitor may send, the runs, what is kept of them.

Between ``present`` (pictures and words) and ``ui`` (the Gradio page): everything here takes plain
values, raises our typed errors (``cnaps_demo.errors``) and returns values; ``ui`` turns the
errors into Gradio's toasts in one place (``ui.messages``) and the values into its outputs.

* ``requests``: one typed request per run (``RunRequest``), built once from the page's values;
* ``untrusted``: what may arrive over the network (uploads only; offered models only);
* ``sources``: the input picture (admitted, decoded, maybe made blurry);
* ``picker``: engine labels, cards, the default choice, look-ups by id;
* ``running``: one engine run, its progress and Stop, the example cache;
* ``runs``: the Upscale, Compare and exploration runs (``RunSetup``);
* ``comparison``, ``views``: the results side by side, and their HTML and Markdown;
* ``result_store``: each run kept for the page's follow-ups, within a budget;
* ``latest``: which click of a browser session is the newest; ``live``: the filmstrip's frames;
* ``workdir``: the folder of the files the page shows; ``words``: our errors in a visitor's words.
"""
