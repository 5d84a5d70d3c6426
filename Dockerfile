# One image for every role: `wbl api`, `wbl relay`, `wbl projector` (or `wbl run` for all).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY services ./services
COPY projections ./projections
COPY infra ./infra
RUN pip install --no-cache-dir . && useradd --system --uid 10001 wbl
USER wbl
EXPOSE 8000
ENTRYPOINT ["wbl"]
CMD ["api"]
