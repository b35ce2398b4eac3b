FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --create-home --uid 10001 app
# The converters' tools (ffmpeg, LibreOffice headless, exiftool): the same script as `make install`,
# so the web and worker images offer the same capability graph as a development machine.
COPY scripts/system-deps.sh scripts/system-deps.sh
RUN bash scripts/system-deps.sh && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV STATIC_ROOT=/app/static
RUN FILECONVERT_DATA_DIR=/tmp/build SECRET_KEY=build-only python manage.py collectstatic --noinput -v 0 \
    && rm -rf /tmp/build
USER app
ENV FILECONVERT_DATA_DIR=/tmp/fileconvert
EXPOSE 8000
CMD ["gunicorn", "fileconvert.wsgi", "-c", "fileconvert/gunicorn_conf.py", "-b", "0.0.0.0:8000"]
