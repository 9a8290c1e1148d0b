"""FastAPI peer of the fastpath scenario (bench/run --only fastpath): the same
POST /items as examples/python/fastpath.py — a pydantic model with the same
constraints, validated by FastAPI (422 with the same shape) — plus GET /ping so
bench/run can tell it is up. async def: FastAPI's fastest handler form (a def
handler would go through its thread pool).

    uvicorn fastapi_items:app --loop uvloop --http httptools
"""
import itertools

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    price: float = Field(ge=0)
    tags: list[str] = []


app = FastAPI()
_ids = itertools.count(1)


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"message": "pong"}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> dict[str, object]:
    return {"id": next(_ids), **item.model_dump()}
